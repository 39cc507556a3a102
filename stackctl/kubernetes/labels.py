"""The label and annotation contract: every name stackctl writes on an object or reads back.

One module so that the renderer, promote, history, the strategies and the tests agree on the same
strings (they used to be defined in three places, and `L_PART_OF` meant two different labels).
Promote, rollback and prune rely on these names; docs/kubernetes.md lists what each one means.
Pure constants: importing this module costs nothing and imports nothing.
"""

from __future__ import annotations

# --- identity (Kubernetes' recommended labels, and the stack/profile they belong to) -------------
L_NAME = "app.kubernetes.io/name"
L_INSTANCE = "app.kubernetes.io/instance"
L_PART_OF = "app.kubernetes.io/part-of"
L_MANAGED_BY = "app.kubernetes.io/managed-by"
L_STACK = "stackctl.io/stack"
L_PROFILE = "stackctl.io/profile"

# --- render → promote: how an object is applied -------------------------------------------------
A_WAVE = "stackctl.io/wave"  # apply order: one wave at a time
A_WAIT = "stackctl.io/wait"  # "complete": the next wave waits for this Job
A_SERVICE = "stackctl.io/service"  # the Compose service an object came from
A_CONFIG_HASH = "stackctl.io/config-hash"  # pod template: rolls the pods when a ConfigMap changes
A_SECRET_HASH = "stackctl.io/secret-hash"  # pod template: rolls the pods when a Secret changes
A_VALUES = "stackctl.io/values"  # Secret: the names of the values promote fills in
A_PRUNE = "stackctl.io/prune"  # "false": promote never deletes the object (claims)
A_STRATEGY = "stackctl.io/strategy"  # rolling | recreate | blue-green | canary

# --- strategies ---------------------------------------------------------------------------------
L_COLOUR = "stackctl.io/colour"  # blue-green: the colour of a Deployment, and the one its Service selects
A_KEEP_PREVIOUS = "stackctl.io/keep-previous"  # blue-green: "false" removes the previous colour at once
FIRST_COLOUR = "blue"
COLOURS = ("blue", "green")
L_TRACK = "stackctl.io/track"  # canary: "stable" (the rendered Deployment) or "canary" (promote's)
A_CANARY_STEPS = "stackctl.io/canary-steps"  # canary: "weight:pause-seconds,..." for promote
A_TEMPLATE_HASH = "stackctl.io/template-hash"  # blue-green/canary: the pod template a copy was made from

# --- history and the ApplySet (kubectl's ApplySet convention) -----------------------------------
L_REVISION = "stackctl.io/revision"
L_STATUS = "stackctl.io/status"  # deployed | superseded | failed
L_APPLYSET_ID = "applyset.kubernetes.io/id"
L_APPLYSET_PART_OF = "applyset.kubernetes.io/part-of"  # on every applied object; prune lists by it
A_TOOLING = "applyset.kubernetes.io/tooling"
A_GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
A_PROFILE = "stackctl.io/profile"
A_CREATED = "stackctl.io/created"
A_DESCRIPTION = "stackctl.io/description"
A_CONTEXT = "stackctl.io/context"
A_VERSION = "stackctl.io/version"
A_MESSAGE = "stackctl.io/message"  # revision: `promote --message`
A_GIT_COMMIT = "stackctl.io/git-commit"  # revision: the project's HEAD when it was promoted
A_GIT_DIRTY = "stackctl.io/git-dirty"  # revision: "true" when the work tree had uncommitted changes
A_AUTHOR = "stackctl.io/author"  # revision: who promoted it (user@host, as the secrets store names people)
REVISION_TYPE = "stackctl.io/revision"  # the Secret type of a revision

# --- preview environments (`promote --preview`, `stackctl previews`) -----------------------------
L_PREVIEW = "stackctl.io/preview"  # Namespace: the preview's name; `previews prune` deletes only these
L_BRANCH = "stackctl.io/branch"  # Namespace: the git branch, made a label value
A_BRANCH = "stackctl.io/branch"  # Namespace: the git branch as git names it
A_EXPIRES = "stackctl.io/expires"  # Namespace: RFC 3339 UTC time after which `previews prune --expired` deletes it
PREVIEW_VALUES_TYPE = "stackctl.io/preview-values"  # the Secret type of a preview's own generated values

# --- server-side apply --------------------------------------------------------------------------
MANAGER = "stackctl"  # the field manager of every apply
ARGO_CONTROLLER_MANAGER = "rollouts-controller"  # the Argo Rollouts controller's field manager

# --- kinds --------------------------------------------------------------------------------------
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Rollout")
CONFIG_KINDS = ("ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap")
