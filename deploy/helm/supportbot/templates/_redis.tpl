{{/* The bundled Redis pods' shared environment and container security context. */}}

{{- define "supportbot.redis.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: ME
  value: "$(POD_NAME).{{ include "supportbot.redis.headless" . }}.{{ .Release.Namespace }}.svc"
- name: PEERS
  value: {{ include "supportbot.redis.hosts" . | quote }}
- name: MASTER_NAME
  value: {{ .Values.redis.bundled.masterName | quote }}
- name: QUORUM
  value: {{ .Values.redis.bundled.quorum | quote }}
- name: DOWN_AFTER_MS
  value: {{ .Values.redis.bundled.downAfterMilliseconds | quote }}
- name: FAILOVER_TIMEOUT_MS
  value: {{ .Values.redis.bundled.failoverTimeoutMilliseconds | quote }}
- name: CONF_DIR
  value: /conf
- name: DATA_DIR
  value: /data
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "supportbot.redis.secretName" . }}
      key: redis-password
{{- end }}

{{- define "supportbot.redis.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}
