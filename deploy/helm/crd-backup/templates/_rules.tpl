{{/*
The alert rules, shared by the PrometheusRule and deploy/monitoring/crd-backup.rules.yaml (the
defaults render that file). Thresholds come from values. The annotations use no Prometheus
templating, so a promtool test can expect them verbatim.
*/}}
{{- define "crd-backup.ruleGroups" -}}
{{- $r := .Values.monitoring.rules -}}
groups:
  - name: crd-backup
    rules:
      - alert: CrdBackupNoRecentSnapshot
        # no snapshot that captured anything for snapshotMaxAgeSeconds (twice the schedule's
        # interval), or only failures since the metrics began
        expr: |
          time() - crd_backup_snapshot_last_success_timestamp_seconds > {{ int64 $r.snapshotMaxAgeSeconds }}
          or
          max without (outcome) (crd_backup_snapshot_runs_total{outcome="failure"}) > 0
            unless crd_backup_snapshot_last_success_timestamp_seconds
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: No crd-backup snapshot has succeeded for {{ int64 $r.snapshotMaxAgeSeconds }} seconds.
          description: >-
            The last snapshot that captured anything finished more than
            {{ int64 $r.snapshotMaxAgeSeconds }} s ago (two schedule intervals), or every run so far failed.
            Custom resources changed since then cannot be restored.
          runbook: >-
            Look at the last runs: `kubectl -n <namespace> get jobs -l app.kubernetes.io/component=snapshot`
            and `kubectl logs job/<name>` (or the crd-backup schedule pod's log). The log's last line
            says why (exit 1: storage or API unreachable, credentials refused, bucket missing; exit 2: a
            wrong flag). Check the storage credentials (Secret or workload identity) and that the
            CronJob is not suspended and its ticks are not missed (startingDeadlineSeconds). Then take
            one by hand: `kubectl -n <namespace> create job --from=cronjob/<name> crd-backup-now`.
      - alert: CrdBackupSnapshotFailed
        # the last run produced no snapshot at all
        expr: crd_backup_snapshot_last_run_success == 0 and crd_backup_snapshot_last_run_partial == 0
        labels:
          severity: warning
        annotations:
          summary: The last crd-backup snapshot failed; nothing was stored.
          description: >-
            The last scheduled snapshot stored nothing (exit 1). Older snapshots are intact;
            CrdBackupNoRecentSnapshot fires if this goes on for two intervals.
          runbook: >-
            Read the failed run's log (`kubectl logs job/<name>`): it ends with one line naming the
            cause (storage unreachable or refusing the credentials, the API server unreachable, retention
            failing after a stored snapshot). Fix it and start a run by hand
            (`kubectl create job --from=cronjob/<name>`); a transient cause clears at the next run.
      - alert: CrdBackupSnapshotPartial
        expr: crd_backup_snapshot_last_run_partial == 1
        labels:
          severity: warning
        annotations:
          summary: The last crd-backup snapshot is partial.
          description: >-
            The last snapshot was stored but some resources could not be captured (exit 3). They
            are missing from it: a restore would not bring them back.
          runbook: >-
            `crd-backup inspect latest` lists the resources with errors, and the run's log has a
            "resource incomplete" line for each, with the reason. Forbidden: the ClusterRole does not
            cover the resource (a CRD added since it was made, or deploy/'s role before your CRDs were
            added to it): regenerate it with `crd-backup rbac`; in the chart, `helm upgrade` looks the
            CRDs' groups up again (or set rbac.groups). ServiceUnavailable or a conversion error: the
            CRD's conversion webhook is down; fix it. A CRD that is not Established: see its conditions
            (`kubectl get crd <name> -o yaml`).
      - alert: CrdBackupDrillFailed
        expr: crd_backup_drill_success == 0
        labels:
          severity: critical
        annotations:
          summary: The last crd-backup recovery drill failed.
          description: >-
            Restoring the latest snapshot into the scratch cluster did not reproduce it: a real
            restore would likely fail the same way.
          runbook: >-
            Read the drill's log or report (`crd-backup drill -o json`): `reasons` says what failed
            (verification: a corrupt or tampered archive; restore: objects the target refused, with the
            server's messages; check: objects missing or different after the restore; CRDs not
            Established). Reproduce it by hand with `crd-backup drill latest --target-context <scratch>`,
            fix the cause (often a CRD whose webhook or controller the scratch cluster lacks), and run the
            drill CronJob again (`kubectl create job --from=cronjob/<name>-drill`).
      - alert: CrdBackupJournalLagHigh
        # the oldest change not yet stored (segments flush every 5 s by default)
        expr: crd_backup_journal_lag_seconds > {{ int64 $r.journalMaxLagSeconds }}
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: The crd-backup change journal is more than {{ int64 $r.journalMaxLagSeconds }} s behind.
          description: >-
            The recorder has not written the cluster's changes to storage for more than
            {{ int64 $r.journalMaxLagSeconds }} s: a restore to the latest point in time would miss them.
          runbook: >-
            Look at the recorder pod's log (`kubectl logs deploy/<name>-recorder`). Storage errors:
            check the bucket and credentials (the spool keeps the changes until it is full). A slow
            or throttled API server: raise --qps. A full spool (--spool-size): the pod needs a larger
            volume (recorder.spool). Restarting the pod is safe: it relists and continues.
      - alert: CrdBackupJournalStalled
        # a running recorder stores a segment, empty or not, at least every 6 flush intervals
        expr: time() - crd_backup_journal_last_flush_timestamp_seconds > {{ int64 $r.journalMaxFlushAgeSeconds }}
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: The crd-backup recorder has stored no journal segment for {{ int64 $r.journalMaxFlushAgeSeconds }} seconds.
          description: >-
            The recorder is running but its segments do not reach storage: changes pile up in
            its spool, and past --spool-size it stops and records a gap.
          runbook: >-
            Look at the recorder pod's log (`kubectl logs deploy/<name>-recorder`) for upload
            errors: storage unreachable, credentials refused or expired (workload identity), a
            bucket policy or Object Lock setting that refuses the write. Fix storage and the spool
            drains by itself; if the pod is wedged, deleting it is safe (a new one relists and
            continues, recording a gap only if changes were lost).
      - alert: CrdBackupJournalGap
        expr: increase(crd_backup_journal_gaps_total[1h]) > 0
        labels:
          severity: warning
        annotations:
          summary: The crd-backup change journal has a gap.
          description: >-
            The recorder lost its place in the cluster's change stream (a watch expired, the spool
            overflowed, the pod was down too long) and recorded a gap: points in time inside it cannot
            be restored exactly.
          runbook: >-
            The journal resumes from a fresh list by itself; the gap stays. Take a snapshot now so the
            next point-in-time restore starts after the gap (`kubectl create job --from=cronjob/<name>`).
            If gaps repeat, see why in the recorder's log: watches expiring (the API server's
            --watch-cache-sizes or the recorder's lag), a spool too small, or pod restarts.
      - alert: CrdBackupStandbyBehind
        # the point in time of the primary that the standby cluster equals: every segment advances
        # it, and an idle recorder still stores one every 6 flush intervals (30 s by default)
        expr: time() - crd_backup_standby_applied_until_timestamp_seconds > {{ int64 $r.standbyMaxBehindSeconds }}
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: The standby cluster is more than {{ int64 $r.standbyMaxBehindSeconds }} s behind the primary.
          description: >-
            The standby cluster equals a state of the primary older than
            {{ int64 $r.standbyMaxBehindSeconds }} s: a failover now would lose the changes since, and
            the recovery point grows while this lasts.
          runbook: >-
            Look at the standby pod's log (`kubectl logs deploy/<name>-standby` in the standby
            cluster). Storage errors: the bucket or the read-only credentials (standby.credentialsSecret
            or the workload identity). No new segments: the primary's recorder is stalled or down
            (CrdBackupJournalStalled on the primary). "holds the lease": another standby writes to this
            cluster; stop one. Steps that take long: a re-sync after a gap or a new chain lists and
            writes every object, and ends by itself. Restarting the pod is safe: it resumes from its
            ConfigMap (crd-backup-standby).
      - alert: CrdBackupStandbyRefusing
        # objects the standby cluster refuses are retried with backoff; the others go on
        expr: increase(crd_backup_standby_errors_total[15m]) > 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: The standby cluster keeps refusing some of the primary's changes.
          description: >-
            For 15 minutes the standby has met errors: objects the standby cluster refuses (validation,
            an admission webhook, RBAC) or steps that failed. Those objects differ from the primary's
            and would be wrong after a failover; the rest are kept up to date.
          runbook: >-
            The standby pod's log (`kubectl logs deploy/<name>-standby`) names each refused object
            with the server's message. Forbidden: the standby's ClusterRole does not cover the group
            (`helm upgrade` looks the CRD groups up again, or set rbac.groups; CRDs need
            standby.syncCrds). A webhook or validation error: the standby cluster lacks a CRD version,
            a controller or a webhook configuration the primary has; install it. Storage or API
            errors: check the bucket and the API server. The standby retries by itself.
{{- end -}}
