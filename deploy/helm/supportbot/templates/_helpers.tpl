{{/* Names, labels and the wiring shared by the templates. */}}

{{- define "supportbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "supportbot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "supportbot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "supportbot.labels" -}}
helm.sh/chart: {{ include "supportbot.chart" . }}
{{ include "supportbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "supportbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "supportbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: app
{{- end }}

{{- define "supportbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "supportbot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the app loads with envFrom: the user's or the chart's. */}}
{{- define "supportbot.secretName" -}}
{{- default (include "supportbot.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* ---- bundled Redis with Sentinel ---- */}}

{{- define "supportbot.redis.fullname" -}}
{{- printf "%s-redis" (include "supportbot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "supportbot.redis.headless" -}}
{{- printf "%s-headless" (include "supportbot.redis.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "supportbot.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "supportbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "supportbot.redis.labels" -}}
helm.sh/chart: {{ include "supportbot.chart" . }}
{{ include "supportbot.redis.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "supportbot.redis.secretName" -}}
{{- default (include "supportbot.redis.fullname" .) .Values.redis.bundled.auth.existingSecret }}
{{- end }}

{{/* Space-separated stable DNS names of the Redis pods, in ordinal order. */}}
{{- define "supportbot.redis.hosts" -}}
{{- $sts := include "supportbot.redis.fullname" . }}
{{- $svc := include "supportbot.redis.headless" . }}
{{- $hosts := list }}
{{- range $i := until (int .Values.redis.bundled.replicas) }}
{{- $hosts = append $hosts (printf "%s-%d.%s.%s.svc" $sts $i $svc $.Release.Namespace) }}
{{- end }}
{{- join " " $hosts }}
{{- end }}

{{/* The app's Redis URL for the bundled Redis: every sentinel, the master set, database 0.
     $(REDIS_PASSWORD) is expanded by Kubernetes from the env var defined just before it. */}}
{{- define "supportbot.redis.url" -}}
{{- $sentinels := list }}
{{- range $host := splitList " " (include "supportbot.redis.hosts" .) }}
{{- $sentinels = append $sentinels (printf "%s:26379" $host) }}
{{- end }}
{{- printf "redis+sentinel://:$(REDIS_PASSWORD)@%s/%s/0?sentinel_password=$(REDIS_PASSWORD)" (join "," $sentinels) .Values.redis.bundled.masterName }}
{{- end }}

{{/* Fail early on a setting that would break a multi-replica install. */}}
{{- define "supportbot.validate" -}}
{{- range $key, $_ := .Values.config }}
{{- if not (hasPrefix "SUPPORTBOT_" $key) }}
{{- fail (printf "config.%s: only SUPPORTBOT_* settings belong in config" $key) }}
{{- end }}
{{- if regexMatch "(TOKEN|SECRET|PASSWORD|API_KEY|DATABASE_URL|REDIS_URL)" $key }}
{{- fail (printf "config.%s looks secret: put it in secrets.env or secrets.existingSecret" $key) }}
{{- end }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- $env := .Values.secrets.env | default dict }}
{{- if not (index $env "SUPPORTBOT_SECRET_KEY") }}
{{- fail "secrets.env.SUPPORTBOT_SECRET_KEY is required (the same cookie key on every replica), or set secrets.existingSecret" }}
{{- end }}
{{- if not (index $env "SUPPORTBOT_DATABASE_URL") }}
{{- fail "secrets.env.SUPPORTBOT_DATABASE_URL is required (replicas share one PostgreSQL), or set secrets.existingSecret" }}
{{- end }}
{{- if and (eq .Values.redis.mode "external") (not (index $env "SUPPORTBOT_REDIS_URL")) }}
{{- fail "redis.mode=external needs secrets.env.SUPPORTBOT_REDIS_URL (or secrets.existingSecret)" }}
{{- end }}
{{- end }}
{{- if not (has .Values.redis.mode (list "bundled" "external")) }}
{{- fail "redis.mode must be bundled or external" }}
{{- end }}
{{- if and .Values.rollingUpdate.maxUnavailable (ne (toString .Values.rollingUpdate.maxUnavailable) "0") }}
{{- fail "rollingUpdate.maxUnavailable must stay 0: an upgrade must never drop below the serving replicas" }}
{{- end }}
{{- end }}

{{/* Whether to render the ServiceMonitor: true, false, or auto (the CRD is installed). */}}
{{- define "supportbot.serviceMonitor.enabled" -}}
{{- $mode := toString .Values.serviceMonitor.enabled }}
{{- if or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}true{{ end }}
{{- end }}
