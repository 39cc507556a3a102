"""Deploying a rendered stack to a cluster: the promote steps (`deployer`), the commands behind
`promote`, `rollback`, `history`, `run-job` (`commands`), the rollout watch (`watch`), history
and the ApplySet (`history`), prune, diff, diagnosis, and the strategies (`bluegreen`, `canary`,
`argo`, `runjob`). Everything reaches the API server through `stackctl.kubernetes.client.Cluster`.
Importing the package itself imports nothing.
"""
