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
{{- end -}}
