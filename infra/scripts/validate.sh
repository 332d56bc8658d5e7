#!/usr/bin/env bash
# Lint and validate template.yaml offline: cfn-lint, `sam validate --lint`, then cfn-lint again on
# the SAM-translated template (to catch circular dependencies that only exist after the transform).
#
# aws-sam-cli pins many of its own dependencies, so it lives in a separate virtualenv
# (${SAM_VENV:-.venv-sam}, git-ignored) that is created once and reused; it is never a
# dependency of the project. No AWS account is needed: dummy credentials and a region are set
# only for this script's processes.
#
# Usage: infra/scripts/validate.sh            (from anywhere inside the repository)
# Env:   SAM_VENV  path of the tools venv (default: .venv-sam at the repository root)
#        PYTHON    interpreter used to create it (default: python3)
#        TEMPLATE  template to check (default: template.yaml)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

venv="${SAM_VENV:-.venv-sam}"
python="${PYTHON:-python3}"
template="${TEMPLATE:-template.yaml}"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t0="$(now)"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
missing=()
[[ -x "$venv/bin/sam" ]] || missing+=("aws-sam-cli")
[[ -x "$venv/bin/cfn-lint" ]] || missing+=("cfn-lint")
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]} into $venv"
    "$venv/bin/python" -m pip install --quiet "${missing[@]}"
fi
versions="$("$venv/bin/sam" --version), cfn-lint $("$venv/bin/cfn-lint" --version | awk '{print $NF}')"
echo "==> tools ready in $(elapsed "$t0") s: $versions"

# Offline and anonymous: nothing here talks to AWS.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export SAM_CLI_TELEMETRY=0
unset AWS_PROFILE AWS_ENDPOINT_URL || true

t1="$(now)"
echo "==> cfn-lint $template"
"$venv/bin/cfn-lint" "$template"
echo "==> sam validate --lint"
"$venv/bin/sam" validate --lint --region us-east-1 --template-file "$template"

# Neither check above sees a circular dependency that only appears after the SAM transform (for
# example a function whose environment names an API whose routes are that function's `Events`):
# CloudFormation would refuse such a stack at deploy time. So translate the template with the SAM
# translator, offline, and lint the plain CloudFormation result too (cfn-lint rule E3004).
translated="$(mktemp "${TMPDIR:-/tmp}/sam-translated.XXXXXX.json")"
trap 'rm -f "$translated"' EXIT
echo "==> SAM transform + cfn-lint of the result"
"$venv/bin/python" - "$template" "$translated" <<'PY'
import json
import sys

from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    template = yaml_parse(f.read())

# The translator wants S3 code locations; local CodeUri folders are replaced, as `sam validate` does.
functions = [template.get("Globals", {}).get("Function", {})]
functions += [
    r.get("Properties") or {} for r in template.get("Resources", {}).values()
    if r.get("Type") == "AWS::Serverless::Function"
]
for props in functions:
    if isinstance(props.get("CodeUri"), str):
        props["CodeUri"] = "s3://validate-placeholder/code.zip"

translated = Translator(managed_policy_map=None, sam_parser=Parser()).translate(
    template, parameter_values={}, get_managed_policy_map=lambda: {}
)
with open(target, "w", encoding="utf-8") as f:
    json.dump(translated, f, indent=1, default=str)
PY
"$venv/bin/cfn-lint" --format parseable "$translated"
echo "==> validation passed in $(elapsed "$t1") s (total $(elapsed "$t0") s)"
