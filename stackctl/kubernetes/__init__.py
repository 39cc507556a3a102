"""Kubernetes backend: render the stack model into objects (pure), validate them, write them.

`render.render()` is the pure step (model + `Target` + `SecretInputs` + host files → objects);
`gather` collects those inputs from a profile (files, the secrets store); `validate` checks objects
against the official schema of a Kubernetes version; `write` serializes them (stdout or a directory).
`apply` is the one module that talks to an API server; `promote`, `rollout`, `history` and
`diagnose` build on it (`stackctl promote`), `images` builds and pushes images.
"""
