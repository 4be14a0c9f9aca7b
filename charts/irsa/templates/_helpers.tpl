{{/*
Labels of every object: the two of manifests/ (name, component), which are also the selectors, and Helm's.
Call with (dict "root" $ "component" "webhook").
*/}}
{{- define "irsa.labels" -}}
app.kubernetes.io/name: irsa
app.kubernetes.io/component: {{ .component }}
{{ include "irsa.helmLabels" .root }}
{{- end }}

{{- define "irsa.selectorLabels" -}}
app.kubernetes.io/name: irsa
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "irsa.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "irsa.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{ $image.repository }}@{{ $image.digest }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The annotation prefix the webhook reads (its skip label is in the webhook configuration's objectSelector). */}}
{{- define "irsa.annotationPrefix" -}}
{{ .Values.webhook.injection.annotationPrefix | default "eks.amazonaws.com" }}
{{- end }}

{{/* The webhook's settings, as the ConfigMap irsa-webhook holds them. */}}
{{- define "irsa.webhook.config" -}}
{{- $flags := dict
  "annotationPrefix" "IRSA_ANNOTATION_PREFIX"
  "tokenAudience" "IRSA_TOKEN_AUDIENCE"
  "tokenExpiration" "IRSA_TOKEN_EXPIRATION"
  "tokenMountPath" "IRSA_TOKEN_MOUNT_PATH"
  "awsDefaultRegion" "IRSA_AWS_DEFAULT_REGION"
  "stsRegionalEndpoint" "IRSA_STS_REGIONAL_ENDPOINT"
  "roleArnPattern" "IRSA_ROLE_ARN_PATTERN"
  "onLookupFailure" "IRSA_ON_LOOKUP_FAILURE"
  "onForbiddenRole" "IRSA_ON_FORBIDDEN_ROLE" -}}
{{- $webhook := .Values.webhook -}}
{{- $data := dict "IRSA_LOG_FORMAT" $webhook.logFormat "IRSA_LOG_LEVEL" $webhook.logLevel "IRSA_WORKER_THREADS" $webhook.workerThreads -}}
{{- range $key, $value := $webhook.injection -}}
{{- if not (hasKey $flags $key) -}}
{{- fail (printf "webhook.injection.%s: not an injection setting (expected one of %s; others go in webhook.extraConfig)" $key (keys $flags | sortAlpha | join ", ")) -}}
{{- end -}}
{{- if ne (toString $value) "" -}}
{{- $_ := set $data (get $flags $key) $value -}}
{{- end -}}
{{- end -}}
{{- $data = merge (deepCopy $webhook.extraConfig) $data -}}
{{- range $key, $value := $data }}
{{- if ne (toString $value) "" }}
{{ $key }}: {{ include "irsa.string" $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The issuer's settings, as the ConfigMap irsa-issuer holds them. */}}
{{- define "irsa.issuer.config" -}}
{{- $issuer := .Values.issuer -}}
{{- $data := dict "IRSA_ISSUER_URL" (required "issuer.url is required" $issuer.url) "IRSA_LOG_FORMAT" $issuer.logFormat "IRSA_MAX_AGE" $issuer.maxAge "IRSA_WORKER_THREADS" $issuer.workerThreads -}}
{{- $data = merge (deepCopy $issuer.extraConfig) $data -}}
{{- range $key, $value := $data }}
{{- if ne (toString $value) "" }}
{{ $key }}: {{ include "irsa.string" $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* A value as an environment variable's string: whole numbers without the exponent YAML's floats get. */}}
{{- define "irsa.string" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{ int64 . }}
{{- else -}}
{{ toString . }}
{{- end -}}
{{- end }}
