{{/*
Shared pieces of every Gantry pod. Each process differs only in its command, its resources and
which secrets it may read, so the container, the environment and the pod spec live here once.
*/}}

{{- define "gantry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels never change after install, so they hold only release and component. */}}
{{- define "gantry.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gantry.labels" -}}
{{ include "gantry.selectorLabels" . }}
app.kubernetes.io/part-of: gantry
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "gantry.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "gantry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "gantry.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The gantry.yaml every process reads: the `config` values, verbatim. */}}
{{- define "gantry.configYaml" -}}
{{ toYaml .Values.config }}
{{- end -}}

{{- define "gantry.dataDir" -}}
{{- required "config.data_dir must be an absolute path (the volume for state is mounted there)" .Values.config.data_dir -}}
{{- end -}}

{{/* Where `gantry ingest serve` spools, resolved as ingest/server.py spool_dir() does. */}}
{{- define "gantry.spoolDir" -}}
{{- $dir := dig "ingest" "spool_dir" "" .Values.config | default (printf "%s/ingest-spool" (include "gantry.dataDir" .)) -}}
{{- if not (hasPrefix "/" $dir) -}}
{{- fail (printf "config.ingest.spool_dir must be an absolute path (a volume is mounted there), not %q" $dir) -}}
{{- end -}}
{{- $dir -}}
{{- end -}}

{{/*
The local directory of the snapshot store (ingest/snapshots.py store_url()), or empty when
config.ingest.snapshot_url names an object store (s3://...) that every pod shares.
*/}}
{{- define "gantry.snapshotDir" -}}
{{- $url := dig "ingest" "snapshot_url" "" .Values.config | default "" -}}
{{- if not $url -}}
{{- printf "%s/snapshots" (include "gantry.dataDir" .) -}}
{{- else if hasPrefix "file://" $url -}}
{{- trimPrefix "file://" $url -}}
{{- end -}}
{{- end -}}

{{/*
A pod's arguments (as gantry.podSpec takes them) with access to a local snapshot store: it lives
on the single ingest pod's `snapshots` volume (ReadWriteOnce), so the pod mounts that claim and
runs on the same node. With an object store nothing changes (the pod reaches the bucket).
Arguments: root, pod. Returns the pod's arguments as YAML (use fromYaml).
*/}}
{{- define "gantry.snapshotAccess" -}}
{{- $root := .root -}}
{{- $pod := deepCopy .pod -}}
{{- $snapshotDir := include "gantry.snapshotDir" $root -}}
{{- if $snapshotDir }}
{{- $ingest := dict "root" $root "component" "ingest" -}}
{{- $claim := printf "snapshots-%s-ingest-0" (include "gantry.fullname" $root) -}}
{{- $sameNode := dict "labelSelector" (dict "matchLabels" (include "gantry.selectorLabels" $ingest | fromYaml)) "topologyKey" "kubernetes.io/hostname" -}}
{{- $_ := set $pod "mounts" (append ($pod.mounts | default list) (dict "name" "snapshots" "mountPath" $snapshotDir)) -}}
{{- $_ := set $pod "volumes" (append ($pod.volumes | default list) (dict "name" "snapshots" "persistentVolumeClaim" (dict "claimName" $claim))) -}}
{{- $_ := set $pod "affinity" (dict "podAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $sameNode))) -}}
{{- end }}
{{- toYaml $pod -}}
{{- end -}}

{{/* "true" when S3 credentials come from secrets.objectStore rather than the pod's cloud identity. */}}
{{- define "gantry.objectStoreCredentials" -}}
{{- $secret := .Values.secrets.objectStore -}}
{{- if and (not (include "gantry.snapshotDir" .)) (or $secret.existingSecret $secret.data) -}}
true
{{- end -}}
{{- end -}}

{{- define "gantry.rayHeadAddress" -}}
{{- printf "ray://%s-ray-head-svc:%d" (include "gantry.fullname" .) (int .Values.recognize.ray.clientPort) -}}
{{- end -}}

{{/*
The Secret holding `.name` (a key of .Values.secrets): the one you manage (existingSecret) or the
one this chart creates from `data`.
*/}}
{{- define "gantry.secretName" -}}
{{- $secret := index .root.Values.secrets .name -}}
{{- $secret.existingSecret | default (printf "%s-%s" (include "gantry.fullname" .root) (kebabcase .name)) -}}
{{- end -}}

{{- define "gantry.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "gantry.secretName" . }}
      key: {{ .key }}
{{- end -}}

{{/*
Environment of a Gantry container. Endpoints come as GANTRY_<SECTION>__<KEY> overrides so that
gantry.yaml stays the same in every cluster; each component gets only the secrets it uses.
The warehouse DSN is composed with Kubernetes $(VAR) expansion from the ClickHouse Secret, so the
password never appears in the ConfigMap (it must be URL-safe: see docs/deploy.md).
*/}}
{{- define "gantry.env" -}}
{{- $root := .root -}}
{{- $config := $root.Values.config -}}
- name: GANTRY_CONFIG
  value: /etc/gantry/gantry.yaml
{{- if .probes }}
- name: GANTRY_HEALTH_PORT
  value: {{ $root.Values.healthPort | quote }}
- name: GANTRY_HEALTH_HOST
  value: "0.0.0.0"
{{- end }}
- name: GANTRY_BROKER__BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" $root.Values.kafka.bootstrapServers | quote }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "clickhouse" "env" "CLICKHOUSE_USER" "key" "username") }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "clickhouse" "env" "CLICKHOUSE_PASSWORD" "key" "password") }}
- name: GANTRY_WAREHOUSE__DSN
  value: {{ printf "%s://$(CLICKHOUSE_USER):$(CLICKHOUSE_PASSWORD)@%s:%d/%s" $root.Values.clickhouse.scheme $root.Values.clickhouse.host (int $root.Values.clickhouse.port) (dig "warehouse" "database" "gantry" $config) | quote }}
{{- if and (eq .component "recognizer") $root.Values.recognize.ray.enabled }}
- name: GANTRY_RAY__ADDRESS
  value: {{ include "gantry.rayHeadAddress" $root | quote }}
{{- end }}
{{- if has .component (list "jobs" "sink" "api") }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "pseudonymKey" "env" (dig "privacy" "pseudonym_key_env" "GANTRY_PSEUDONYM_KEY" $config) "key" "key") }}
{{- end }}
{{- if eq .component "jobs" }}
- name: WORKER_INDEX
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
{{- range (dig "hotlist" "subscribers" list $config) }}
{{- if .secret_env }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "webhooks" "env" .secret_env "key" .secret_env) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq .component "ingest" }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "ingestTokens" "env" (dig "ingest" "tokens_env" "GANTRY_INGEST_TOKENS" $config) "key" "tokens") }}
{{- end }}
{{- if eq .component "api" }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "apiTokens" "env" (dig "api" "tokens_env" "GANTRY_API_TOKENS" $config) "key" "tokens") }}
{{- end }}
{{- /* Everything that writes or reads pictures: edge reads, reads from video, retention, search. */}}
{{- if and (has .component (list "ingest" "recognizer" "prune-snapshots" "api")) (include "gantry.objectStoreCredentials" $root) }}
{{- range list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" }}
{{ include "gantry.secretEnv" (dict "root" $root "name" "objectStore" "env" . "key" .) }}
{{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Probes: liveness asks only "does the process answer" (/metrics); readiness asks "can it work" (/healthz). */}}
{{- define "gantry.probes" -}}
startupProbe:
  httpGet: {path: /metrics, port: health}
  periodSeconds: 5
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /metrics, port: health}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /healthz, port: health}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/*
One Gantry container. Arguments: root, component, args (the gantry subcommand), resources,
ports (extra named ports), probes (bool), gpus (nvidia.com/gpu to request), mounts (extra
volumeMounts), lifecycle (container lifecycle hooks).
*/}}
{{- define "gantry.container" -}}
{{- $root := .root -}}
- name: {{ .component }}
  image: {{ include "gantry.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: ["gantry"]
  args: {{ toJson .args }}
  env:
{{ include "gantry.env" . | indent 4 }}
{{- if .probes }}
  ports:
    - {name: health, containerPort: {{ $root.Values.healthPort }}, protocol: TCP}
{{- range .ports }}
    - {name: {{ .name }}, containerPort: {{ .port }}, protocol: TCP}
{{- end }}
{{ include "gantry.probes" . | indent 2 }}
{{- end }}
{{- with .lifecycle }}
  lifecycle:
{{ toYaml . | indent 4 }}
{{- end }}
  resources:
{{- $resources := deepCopy (.resources | default dict) }}
{{- if .gpus }}
{{- $_ := set $resources "limits" (merge (dict "nvidia.com/gpu" (int .gpus)) ($resources.limits | default dict)) }}
{{- end }}
{{ toYaml $resources | indent 4 }}
  securityContext:
{{ toYaml $root.Values.containerSecurityContext | indent 4 }}
  volumeMounts:
    - {name: config, mountPath: /etc/gantry, readOnly: true}
    - {name: tmp, mountPath: /tmp}
    - {name: data, mountPath: {{ include "gantry.dataDir" $root }}}
{{- if eq .component "recognizer" }}
    - {name: shm, mountPath: /dev/shm}
{{- end }}
{{- range .mounts }}
    - {name: {{ .name }}, mountPath: {{ .mountPath }}}
{{- end }}
{{- end -}}

{{/*
Pod spec of one Gantry process. Arguments as gantry.container, plus volumes (extra pod volumes)
and affinity.
*/}}
{{- define "gantry.podSpec" -}}
{{- $root := .root -}}
{{- /* A pre-install hook runs before the release's ServiceAccount exists: it uses the namespace default. */}}
{{- if not (and (eq .component "migrate") $root.Values.serviceAccount.create) }}
serviceAccountName: {{ include "gantry.serviceAccountName" $root }}
{{- end }}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . | indent 2 }}
{{- end }}
securityContext:
{{ toYaml $root.Values.podSecurityContext | indent 2 }}
{{- with .nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
containers:
{{ include "gantry.container" . }}
volumes:
  - name: config
    configMap:
      name: {{ include "gantry.fullname" $root }}{{ if eq .component "migrate" }}-migrate{{ end }}
  - name: tmp
    emptyDir: {}
  - name: data
    emptyDir: {}
{{- if eq .component "recognizer" }}
  - name: shm
    emptyDir: {medium: Memory}
{{- end }}
{{- with .volumes }}
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: a config checksum rolls the pods when gantry.yaml changes; Prometheus scrape hints. */}}
{{- define "gantry.podMetadata" -}}
metadata:
  labels:
{{ include "gantry.labels" . | indent 4 }}
  annotations:
    checksum/config: {{ include "gantry.configYaml" .root | sha256sum }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .root.Values.healthPort | quote }}
    prometheus.io/path: /metrics
{{- end -}}

{{- define "gantry.pdb" -}}
{{- if .root.Values.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "gantry.fullname" .root }}-{{ .component }}
  labels:
{{ include "gantry.labels" . | indent 4 }}
spec:
  maxUnavailable: {{ .root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
{{ include "gantry.selectorLabels" . | indent 6 }}
{{- end }}
{{- end -}}

{{/*
A StatefulSet volumeClaimTemplate. Arguments: root, component, name, persistence (size,
storageClassName).
*/}}
{{- define "gantry.volumeClaim" -}}
- metadata:
    name: {{ .name }}
    labels:
{{ include "gantry.selectorLabels" . | indent 6 }}
  spec:
    accessModes: [ReadWriteOnce]
{{- with .persistence.storageClassName }}
    storageClassName: {{ . }}
{{- end }}
    resources:
      requests:
        storage: {{ .persistence.size }}
{{- end -}}
