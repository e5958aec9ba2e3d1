"""The hub's accelerator catalogue: the built-in one with the hub admin's AcceleratorModel objects
over it (an object whose model is built in replaces that entry; any other adds a model).

`AcceleratorCatalogue` keeps the objects it has seen, makes the merged catalogue the process's
(`core.accelerators.use`: placement, dispatch and metering read it), and has every member's nodes
listed again, so that a node labelled for a model the admin just added is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from interconnect.api.v1alpha1 import AcceleratorModel, validation_message
from interconnect.core import accelerators
from interconnect.services.members import Members

log = logging.getLogger(__name__)


class AcceleratorCatalogue:
    def __init__(self, members: Members, wake: Callable[[], None]) -> None:
        self._members = members
        self._wake = wake
        self._overrides: dict[str, accelerators.AcceleratorModel] = {}
        """AcceleratorModel object name -> its model."""

    def changed(self, body: Mapping[str, Any]) -> None:
        name = str(body["metadata"]["name"])
        try:
            model = AcceleratorModel.model_validate(body).to_core()
        except (pydantic.ValidationError, ValueError) as exc:
            # Admission refuses what the model refuses; one that slipped through is left out.
            message = validation_message(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
            log.warning("AcceleratorModel %s left out of the catalogue: %s", name, message)
            self._overrides.pop(name, None)
        else:
            if self._overrides.get(name) == model:
                return
            self._overrides[name] = model
        self._apply()

    def deleted(self, name: str) -> None:
        if self._overrides.pop(name, None) is not None:
            self._apply()

    def _apply(self) -> None:
        accelerators.use(accelerators.merge_catalogue(accelerators.CATALOGUE, self._overrides.values()))
        log.info("accelerator catalogue: %d built-in models, %d AcceleratorModel objects",
                 len(accelerators.CATALOGUE), len(self._overrides))
        self._members.resync_nodes()
        self._wake()
