{{/*
The chart's name.
*/}}
{{- define "codestream-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources (63 characters at most: a DNS label).
*/}}
{{- define "codestream-bot.fullname" -}}
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

{{- define "codestream-bot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "codestream-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codestream-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "codestream-bot.labels" -}}
helm.sh/chart: {{ include "codestream-bot.chart" . }}
{{ include "codestream-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: bot
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "codestream-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "codestream-bot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "codestream-bot.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
The container port that serves /healthz, /readyz and /metrics: its name and number.
*/}}
{{- define "codestream-bot.portName" -}}
{{- if eq .Values.mode "http" }}http{{ else }}health{{ end }}
{{- end }}

{{- define "codestream-bot.port" -}}
{{- if eq .Values.mode "http" }}{{ .Values.httpPort }}{{ else }}{{ .Values.healthPort }}{{ end }}
{{- end }}

{{/*
The environment variables that hold secrets: Settings' secret fields in bot/app/settings.py, plus
BOT_DATABASE_URL (it may carry a password). tests/deploy/test_helm.py checks this list against the code.
*/}}
{{- define "codestream-bot.secretEnvNames" -}}
CODESTREAM_REFRESH_TOKEN CODESTREAM_TOKEN SLACK_BOT_TOKEN SLACK_SIGNING_SECRET SLACK_APP_TOKEN BOT_WEBHOOK_TOKEN
{{- end }}

{{/*
The variables the chart sets itself from dedicated values; refused in `env`.
*/}}
{{- define "codestream-bot.managedEnvNames" -}}
BOT_HEALTH_PORT BOT_DATABASE_URL BOT_CONFIG CODESTREAM_CA_BUNDLE
{{- end }}

{{/*
Whether the chart renders its own Secret: no existingSecret, and at least one value is set.
*/}}
{{- define "codestream-bot.createSecret" -}}
{{- if not .Values.secrets.existingSecret }}
{{- range $key, $value := .Values.secrets.values }}
{{- if $value }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "codestream-bot.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "codestream-bot.fullname" . }}
{{- end }}
{{- end }}

{{/*
The key of a variable in the Secret: secrets.keys overrides (existingSecret only), else the name.
*/}}
{{- define "codestream-bot.secretKey" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- if $root.Values.secrets.existingSecret }}
{{- default $name (index ($root.Values.secrets.keys | default dict) $name) }}
{{- else }}
{{- $name }}
{{- end }}
{{- end }}

{{/*
"true" when BOT_DATABASE_URL comes from the Secret: database.urlFromSecret, or a value for it in
the Secret the chart renders.
*/}}
{{- define "codestream-bot.dbFromSecret" -}}
{{- if or .Values.database.urlFromSecret (and (not .Values.secrets.existingSecret) .Values.secrets.values.BOT_DATABASE_URL) }}true{{ end }}
{{- end }}

{{/*
The database as the chart sees it, for messages.
*/}}
{{- define "codestream-bot.dbDescription" -}}
{{- if include "codestream-bot.dbFromSecret" . }}BOT_DATABASE_URL from the Secret
{{- else }}{{ .Values.database.url | default (printf "sqlite+aiosqlite:///%s" .Values.database.sqlitePath) }}
{{- end }}
{{- end }}

{{/*
"true" when the database is SQLite (the default), so the pod needs the /data volume and a single
replica. A URL from an existingSecret is not visible to the chart: it is taken to be PostgreSQL.
*/}}
{{- define "codestream-bot.sqlite" -}}
{{- if include "codestream-bot.dbFromSecret" . }}
{{- if and (not .Values.secrets.existingSecret) (hasPrefix "sqlite" (.Values.secrets.values.BOT_DATABASE_URL | default "")) }}true{{ end }}
{{- else if or (not .Values.database.url) (hasPrefix "sqlite" .Values.database.url) }}true
{{- end }}
{{- end }}

{{/*
Checks that stop a broken release before it reaches the cluster, each with a clear message.
*/}}
{{- define "codestream-bot.validate" -}}
{{- if not (has .Values.mode (list "socket" "http")) }}
{{- fail (printf "mode must be socket or http (got %q)" (toString .Values.mode)) }}
{{- end }}
{{- if and (include "codestream-bot.dbFromSecret" .) .Values.database.url }}
{{- fail "database.url is set and BOT_DATABASE_URL also comes from the Secret (database.urlFromSecret or secrets.values.BOT_DATABASE_URL): keep one" }}
{{- end }}
{{- if or (regexMatch "://[^/:@]*:.*@" (toString .Values.database.url)) (regexMatch "(?i)[?&]password=" (toString .Values.database.url)) }}
{{- fail "database.url carries a password, which would be written into the Deployment in clear: put the URL in the Secret (secrets.values.BOT_DATABASE_URL, or the key BOT_DATABASE_URL of secrets.existingSecret) and set database.urlFromSecret=true" }}
{{- end }}
{{- if and .Values.database.urlFromSecret (not .Values.secrets.existingSecret) (not .Values.secrets.values.BOT_DATABASE_URL) }}
{{- fail "database.urlFromSecret=true but the Secret has no BOT_DATABASE_URL: set secrets.values.BOT_DATABASE_URL, or secrets.existingSecret holding that key." }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (include "codestream-bot.sqlite" .) }}
{{- fail (printf "replicaCount=%d requires PostgreSQL, but the database is SQLite (%s): a file on one pod's volume that several replicas cannot share. Set database.url=postgresql+asyncpg://user@host:5432/db (or put BOT_DATABASE_URL with its password in the Secret and set database.urlFromSecret=true), or set replicaCount=1." (int .Values.replicaCount) (include "codestream-bot.dbDescription" .)) }}
{{- end }}
{{- if and (include "codestream-bot.sqlite" .) (or (not (isAbs .Values.database.sqlitePath)) (eq (dir .Values.database.sqlitePath) "/")) }}
{{- fail (printf "database.sqlitePath must be an absolute path in a directory of its own, such as /data/codestream-bot.db (got %q)" .Values.database.sqlitePath) }}
{{- end }}
{{- $secretNames := splitList " " (include "codestream-bot.secretEnvNames" .) }}
{{- $managed := splitList " " (include "codestream-bot.managedEnvNames" .) }}
{{- range $name, $value := .Values.env }}
{{- if has $name $secretNames }}
{{- fail (printf "env.%s is a secret: set it in secrets.values.%s or in secrets.existingSecret, not in env" $name $name) }}
{{- end }}
{{- if has $name $managed }}
{{- fail (printf "env.%s is set by the chart: use healthPort (BOT_HEALTH_PORT), database (BOT_DATABASE_URL), botConfig (BOT_CONFIG) or caBundle (CODESTREAM_CA_BUNDLE)" $name) }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.secrets.values }}
{{- if and (not (has $name $secretNames)) (ne $name "BOT_DATABASE_URL") }}
{{- fail (printf "secrets.values.%s is not a secret the bot reads; known: %s, BOT_DATABASE_URL" $name (join ", " $secretNames)) }}
{{- end }}
{{- end }}
{{- end }}
