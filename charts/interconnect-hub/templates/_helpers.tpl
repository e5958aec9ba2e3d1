{{- define "hub.labels" -}}
app.kubernetes.io/name: interconnect-hub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: compute-interconnect
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "hub.selector" -}}
app.kubernetes.io/name: interconnect-hub
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "hub.monitoring" -}}
{{- $want := index . 0 -}}{{- $caps := index . 1 -}}
{{- if eq (toString $want) "auto" -}}{{- $caps.APIVersions.Has "monitoring.coreos.com/v1" -}}{{- else -}}{{- $want -}}{{- end -}}
{{- end -}}
{{- /* The chart's labels and, after them, extra ones from values (the chart's win a clash). */ -}}
{{- define "hub.extraLabels" -}}
{{- $root := index . 0 -}}{{- $extra := index . 1 | default dict -}}
{{- toYaml (merge (include "hub.labels" $root | fromYaml) $extra) -}}
{{- end -}}
