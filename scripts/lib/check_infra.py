"""Checks of what ships besides the Rust code that no off-the-shelf linter makes.

  python check_infra.py ROOT CHECK...

CHECK is one or more of:
  hcl         every .tf file under infra/ parses (python-hcl2)
  templates   every templatefile() of infra/policies/*.json passes exactly the
              placeholders that file uses
  policies    every policy template under infra/policies/: valid JSON, Allow only,
              no wildcard action, "*" as a resource only for the actions in
              unscoped-actions.json
  settings    the environment Terraform gives the control plane's task and the
              deployer Lambda names only settings those programs read (the tables
              at the top of control-plane/src/settings.rs and
              deployer-lambda/src/settings.rs), and every setting they require
  pins        every `uses:` in .github/workflows is pinned to a full commit SHA, and
              every FROM in docker/*.Dockerfile to an image digest

Prints one line per problem and exits 1 if there was any.
"""

import glob
import json
import os
import re
import sys

PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
SETTING_ROW = re.compile(r"^//! \| `([A-Z][A-Z0-9_]+)`")


def rel(root, path):
    return os.path.relpath(path, root)


def tf_files(root):
    return sorted(glob.glob(os.path.join(root, "infra", "**", "*.tf"), recursive=True))


def parse_tf(root):
    import hcl2

    parsed = {}
    problems = []
    for path in tf_files(root):
        try:
            with open(path, encoding="utf-8") as f:
                parsed[path] = hcl2.load(f)
        except Exception as e:  # the parser raises several kinds; all mean "does not parse"
            problems.append(f"{rel(root, path)}: does not parse: {str(e).splitlines()[0]}")
    if not parsed and not problems:
        problems.append("infra/: no .tf file found")
    return parsed, problems


def check_hcl(root):
    return parse_tf(root)[1]


def check_templates(root):
    """templatefile(".../policies/NAME.json", { k = v, ... }) calls, read from the raw
    text (the parser turns the call into an opaque string)."""
    problems = []
    call = re.compile(r'templatefile\(\s*"[^"]*policies/([a-z0-9-]+\.json)"\s*,\s*\{(.*?)\}\s*\)', re.S)
    key = re.compile(r"^\s*([a-z_]+)\s*=", re.M)
    seen = set()
    for path in tf_files(root):
        text = open(path, encoding="utf-8").read()
        for m in call.finditer(text):
            name, body = m.group(1), m.group(2)
            seen.add(name)
            policy = os.path.join(root, "infra", "policies", name)
            if not os.path.exists(policy):
                problems.append(f"{rel(root, path)}: templatefile of {name}, which does not exist")
                continue
            wanted = set(PLACEHOLDER.findall(open(policy, encoding="utf-8").read()))
            given = set(key.findall(body))
            for k in sorted(wanted - given):
                problems.append(f"{rel(root, path)}: templatefile of {name} does not pass {k}")
            for k in sorted(given - wanted):
                problems.append(f"{rel(root, path)}: templatefile of {name} passes {k}, which it does not use")
    for policy in sorted(glob.glob(os.path.join(root, "infra", "policies", "*.json"))):
        name = os.path.basename(policy)
        if name != "unscoped-actions.json" and name not in seen:
            problems.append(f"infra/policies/{name}: no Terraform module loads it")
    return problems


def check_policies(root):
    problems = []
    unscoped_path = os.path.join(root, "infra", "policies", "unscoped-actions.json")
    unscoped = set(json.load(open(unscoped_path, encoding="utf-8"))["actions"])
    as_list = lambda v: v if isinstance(v, list) else [v]
    for path in sorted(glob.glob(os.path.join(root, "infra", "policies", "*.json"))):
        if path == unscoped_path:
            continue
        name = rel(root, path)
        # Placeholders stand for ARN parts: any string keeps the JSON valid.
        text = PLACEHOLDER.sub("x", open(path, encoding="utf-8").read())
        try:
            doc = json.loads(text)
        except ValueError as e:
            problems.append(f"{name}: not JSON: {e}")
            continue
        for st in as_list(doc.get("Statement", [])):
            sid = st.get("Sid", "(no Sid)")
            if st.get("Effect") != "Allow":
                problems.append(f"{name} {sid}: only Allow statements are expected")
            actions = as_list(st.get("Action", []))
            if "NotAction" in st or "NotResource" in st:
                problems.append(f"{name} {sid}: NotAction/NotResource grant more than they name")
            for a in actions:
                if "*" in a:
                    problems.append(f"{name} {sid}: wildcard action {a}")
            if "*" in as_list(st.get("Resource", [])):
                for a in actions:
                    if a not in unscoped and not a.startswith("sts:"):
                        problems.append(f"{name} {sid}: {a} takes resource-level permissions but is granted on *")
    return problems


def settings_of(root, source):
    names = set()
    for line in open(os.path.join(root, source), encoding="utf-8"):
        m = SETTING_ROW.match(line)
        if m:
            names.add(m.group(1))
    return names


def locals_of(parsed, module_dir):
    """The merged `locals` blocks of the module's .tf files."""
    out = {}
    for path, doc in parsed.items():
        if os.path.dirname(path) == module_dir:
            for block in doc.get("locals", []):
                out.update(block)
    return out


def check_settings(root):
    parsed, problems = parse_tf(root)
    if problems:
        return problems
    control_plane = settings_of(root, "control-plane/src/settings.rs") | {"AWS_REGION"}
    deployer = settings_of(root, "deployer-lambda/src/settings.rs")
    # What each program fails to start without, in production on AWS.
    required = {
        "control-plane": {
            "DATABASE_URL", "TEMPOVOICE_LISTEN", "TEMPOVOICE_SECRETS_KEY", "TEMPOVOICE_DEPLOYER",
            "DEPLOYER_LAMBDA_FUNCTION", "TEMPOVOICE_PREFIX", "TEMPOVOICE_LISTENERS",
            "TEMPOVOICE_DASHBOARD_SESSION_KEY", "TEMPOVOICE_ADMIN_TOKEN",
        },
        "deployer": {
            "TEMPOVOICE_PREFIX", "TEMPOVOICE_CLUSTER", "TEMPOVOICE_VPC_ID", "TEMPOVOICE_SUBNETS",
            "TEMPOVOICE_SECURITY_GROUPS", "TEMPOVOICE_EXECUTION_ROLE_ARN", "TEMPOVOICE_TASK_ROLE_BOUNDARY_ARN",
            "TEMPOVOICE_RUNTIME_REPOSITORY", "TEMPOVOICE_LOG_GROUP",
        },
    }
    modules = {
        "control-plane": (os.path.join(root, "infra", "modules", "control-plane"), control_plane),
        "deployer": (os.path.join(root, "infra", "modules", "deployer"), deployer),
    }
    for module, (directory, known) in modules.items():
        local = locals_of(parsed, directory)
        given = set()
        for block in ("environment", "secrets"):
            value = local.get(block)
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"infra/modules/{module}: local.{block} is not a map of setting names")
                continue
            given |= set(value)
        if not given:
            problems.append(f"infra/modules/{module}: no local.environment (the settings it passes)")
            continue
        for name in sorted(given - known):
            problems.append(f"infra/modules/{module}: {name} is not a setting the program reads")
        for name in sorted(required[module] - given):
            problems.append(f"infra/modules/{module}: the required setting {name} is not passed")
    return problems


def check_pins(root):
    problems = []
    uses = re.compile(r"^\s*(?:-\s*)?uses:\s*([^\s#]+)", re.M)
    for path in sorted(glob.glob(os.path.join(root, ".github", "workflows", "*.y*ml"))):
        for m in uses.finditer(open(path, encoding="utf-8").read()):
            ref = m.group(1).strip("'\"")
            if ref.startswith("./"):
                continue
            if not re.fullmatch(r"[^@\s]+@[0-9a-f]{40}", ref):
                problems.append(f"{rel(root, path)}: {ref} is not pinned to a full commit SHA")
    from_line = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.M | re.I)
    for path in sorted(glob.glob(os.path.join(root, "docker", "*Dockerfile"))):
        text = open(path, encoding="utf-8").read()
        stages = set(re.findall(r"^\s*FROM\s+\S+(?:\s+\S+)*\s+AS\s+(\S+)", text, re.M | re.I))
        for m in from_line.finditer(text):
            image = m.group(1)
            if image in stages:
                continue
            if not re.search(r"@sha256:[0-9a-f]{64}$", image):
                problems.append(f"{rel(root, path)}: FROM {image} is not pinned to a digest")
    return problems


CHECKS = {
    "hcl": check_hcl,
    "templates": check_templates,
    "policies": check_policies,
    "settings": check_settings,
    "pins": check_pins,
}


def main():
    if len(sys.argv) < 3 or any(c not in CHECKS for c in sys.argv[2:]):
        print(__doc__, file=sys.stderr)
        return 2
    root = sys.argv[1]
    problems = []
    for check in sys.argv[2:]:
        problems += CHECKS[check](root)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
