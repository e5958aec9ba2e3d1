"""China's provincial-level divisions (ISO 3166-2:CN), with each capital's position.

The positions feed the default latency table; the codes validate `region` fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    capital: str
    latitude: float
    longitude: float


REGIONS: tuple[Region, ...] = (
    Region("CN-AH", "Anhui", "Hefei", 31.82, 117.23),
    Region("CN-BJ", "Beijing", "Beijing", 39.90, 116.41),
    Region("CN-CQ", "Chongqing", "Chongqing", 29.56, 106.55),
    Region("CN-FJ", "Fujian", "Fuzhou", 26.07, 119.30),
    Region("CN-GD", "Guangdong", "Guangzhou", 23.13, 113.26),
    Region("CN-GS", "Gansu", "Lanzhou", 36.06, 103.83),
    Region("CN-GX", "Guangxi", "Nanning", 22.82, 108.32),
    Region("CN-GZ", "Guizhou", "Guiyang", 26.65, 106.63),
    Region("CN-HA", "Henan", "Zhengzhou", 34.75, 113.62),
    Region("CN-HB", "Hubei", "Wuhan", 30.59, 114.31),
    Region("CN-HE", "Hebei", "Shijiazhuang", 38.04, 114.51),
    Region("CN-HI", "Hainan", "Haikou", 20.04, 110.20),
    Region("CN-HK", "Hong Kong", "Hong Kong", 22.32, 114.17),
    Region("CN-HL", "Heilongjiang", "Harbin", 45.80, 126.53),
    Region("CN-HN", "Hunan", "Changsha", 28.23, 112.94),
    Region("CN-JL", "Jilin", "Changchun", 43.82, 125.32),
    Region("CN-JS", "Jiangsu", "Nanjing", 32.06, 118.80),
    Region("CN-JX", "Jiangxi", "Nanchang", 28.68, 115.86),
    Region("CN-LN", "Liaoning", "Shenyang", 41.81, 123.43),
    Region("CN-MO", "Macao", "Macao", 22.20, 113.54),
    Region("CN-NM", "Inner Mongolia", "Hohhot", 40.84, 111.75),
    Region("CN-NX", "Ningxia", "Yinchuan", 38.49, 106.23),
    Region("CN-QH", "Qinghai", "Xining", 36.62, 101.78),
    Region("CN-SC", "Sichuan", "Chengdu", 30.57, 104.07),
    Region("CN-SD", "Shandong", "Jinan", 36.65, 117.12),
    Region("CN-SH", "Shanghai", "Shanghai", 31.23, 121.47),
    Region("CN-SN", "Shaanxi", "Xi'an", 34.34, 108.94),
    Region("CN-SX", "Shanxi", "Taiyuan", 37.87, 112.55),
    Region("CN-TJ", "Tianjin", "Tianjin", 39.34, 117.36),
    Region("CN-TW", "Taiwan", "Taipei", 25.03, 121.57),
    Region("CN-XJ", "Xinjiang", "Urumqi", 43.83, 87.62),
    Region("CN-XZ", "Xizang", "Lhasa", 29.65, 91.14),
    Region("CN-YN", "Yunnan", "Kunming", 25.04, 102.71),
    Region("CN-ZJ", "Zhejiang", "Hangzhou", 30.27, 120.16),
)

REGION_CODES: tuple[str, ...] = tuple(r.code for r in REGIONS)
BY_CODE: dict[str, Region] = {r.code: r for r in REGIONS}


def is_region(code: str) -> bool:
    return code in BY_CODE
