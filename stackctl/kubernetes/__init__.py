"""Kubernetes backend: render the stack model into objects (pure), validate them, write them.

`render.render()` is the pure step (model + `Target` + `SecretInputs` + host files → objects);
`gather` collects those inputs from a profile (files, the secrets store); `validate` checks objects
against the official schema of a Kubernetes version; `write` serializes them (stdout or a directory).
`client` is the one package that talks to an API server (kubeconfig, transport, `Cluster`);
`apply` is server-side apply in phases; `deploy` builds on both for `stackctl promote`, `rollback`,
`history` and `run-job` (the steps, the rollout watch, history, diagnosis, the strategies);
`images` builds and pushes images.
"""
