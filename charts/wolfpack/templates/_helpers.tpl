{{/* The chart name, shortened to fit a label value. */}}
{{- define "wolfpack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of the names of objects: the release name, with the chart name appended unless the
release name contains it ("wolfpack" gives wolfpack-manager, wolfpack-node-agent, ... as in config/).
*/}}
{{- define "wolfpack.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "wolfpack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "wolfpack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wolfpack
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component: include with (list . "manager"). */}}
{{- define "wolfpack.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "wolfpack.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Labels of a component's objects: include with (list . "manager"). */}}
{{- define "wolfpack.componentLabels" -}}
{{ include "wolfpack.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "wolfpack.managerName" -}}
{{ include "wolfpack.fullname" . }}-manager
{{- end }}

{{- define "wolfpack.agentName" -}}
{{ include "wolfpack.fullname" . }}-node-agent
{{- end }}

{{- define "wolfpack.holderName" -}}
{{ include "wolfpack.fullname" . }}-quorum-holder
{{- end }}

{{/* The heartbeat key Secret: the existing one, else the one the chart creates. */}}
{{- define "wolfpack.heartbeatKeySecret" -}}
{{- if .Values.heartbeatKey.existingSecret }}
{{- .Values.heartbeatKey.existingSecret }}
{{- else }}
{{- include "wolfpack.fullname" . }}-heartbeat-key
{{- end }}
{{- end }}

{{- define "wolfpack.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
