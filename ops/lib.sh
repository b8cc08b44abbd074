# Shared by the operator scripts of this folder; sourced, never run.
#
# They need the AWS CLI (v2, or v1 from pip), curl and python3; no Rust.
# They act on the stack STACK in AWS_REGION with the credentials of the
# shell (AWS_PROFILE, SSO, environment), as the Makefile's operator targets
# pass them:
#
#   STACK       the stack's name (default: stack_name in samconfig.toml)
#   AWS_REGION  its region (default: AWS_DEFAULT_REGION, then samconfig.toml's
#               region, then the AWS CLI's configured region)
#
# Each stack output a script needs can be given instead, and then the stack
# is not read for it: QUEUE_URL, DLQ_URL, WEBHOOK_URL, WITIOP_SECRET_ID,
# SALESFORCE_SECRET_ID, WEBHOOK_FUNCTION_NAME. AWS_ENDPOINT_URL (a local emulator) is passed to
# every AWS CLI call as --endpoint-url: the AWS CLI v1 ignores the variable
# for SQS and would otherwise reach AWS itself.

# No pathname expansion: AWS answers are split into words, never globbed.
set -euf
umask 077

OPS_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
OPS_TARGET=${OPS_TARGET:-$(basename -- "$0")}
OPS_ROOT=$(dirname -- "$OPS_DIR")
AWS_CLI=${AWS_CLI:-aws}
PYTHON=${PYTHON:-python3}
export AWS_PAGER=""

say() { printf '%s\n' "$*"; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}
json() { "$PYTHON" "$OPS_DIR/opsjson.py" "$@"; }

command -v "$PYTHON" >/dev/null 2>&1 || die "python3 is needed (set PYTHON to another)"
command -v "$AWS_CLI" >/dev/null 2>&1 ||
	die "the AWS CLI is needed: https://docs.aws.amazon.com/cli/ (or 'pip install awscli'); AWS_CLI names another"

# Secrets and AWS answers live in a private folder, removed on exit.
OPS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/witiop-ops.XXXXXX")
trap 'rm -rf "$OPS_TMP"' EXIT
trap 'exit 130' INT TERM HUP

OPS_STACK=${STACK:-}
[ -n "$OPS_STACK" ] || OPS_STACK=$(json samconfig "$OPS_ROOT/samconfig.toml" stack_name)
OPS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
[ -n "$OPS_REGION" ] || OPS_REGION=$(json samconfig "$OPS_ROOT/samconfig.toml" region)
[ -n "$OPS_REGION" ] || OPS_REGION=$($AWS_CLI configure get region 2>/dev/null || true)
[ -n "$OPS_REGION" ] || die "set AWS_REGION to the stack's region (make status AWS_REGION=eu-west-1)"

# The AWS CLI, JSON out, in the stack's region (and at AWS_ENDPOINT_URL if set).
aws_() {
	if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
		$AWS_CLI --region "$OPS_REGION" --output json --endpoint-url "$AWS_ENDPOINT_URL" "$@"
	else
		$AWS_CLI --region "$OPS_REGION" --output json "$@"
	fi
}

need_stack() {
	[ -n "$OPS_STACK" ] ||
		die "set STACK to the stack's name (make $OPS_TARGET STACK=witiop-salesforce), or put it in samconfig.toml"
}

# Where we are and as whom: the first thing to check at 3 a.m.
intro() {
	aws_ sts get-caller-identity >"$OPS_TMP/whoami.json" 2>"$OPS_TMP/whoami.err" || {
		cat "$OPS_TMP/whoami.err" >&2
		die "no usable AWS credentials (aws sso login, AWS_PROFILE=...)"
	}
	say "AWS account $(json field "$OPS_TMP/whoami.json" Account) as $(json field "$OPS_TMP/whoami.json" Arn)"
	say "Stack ${OPS_STACK:-(none: outputs from the environment)} in $OPS_REGION${AWS_ENDPOINT_URL:+ at $AWS_ENDPOINT_URL}"
}

stack_json() {
	if [ ! -s "$OPS_TMP/stack.json" ]; then
		need_stack
		aws_ cloudformation describe-stacks --stack-name "$OPS_STACK" >"$OPS_TMP/stack.json"
	fi
}

# output KEY VARIABLE: the variable if set, else the stack output KEY.
output() {
	eval "_value=\${$2:-}"
	if [ -n "$_value" ]; then
		say "$_value"
		return
	fi
	stack_json
	json output "$OPS_TMP/stack.json" "$1" || die "the stack has no output $1: set $2"
}

# queue_attrs URL LABEL, then attr LABEL NAME: a queue's attributes.
queue_attrs() {
	aws_ sqs get-queue-attributes --queue-url "$1" --attribute-names All >"$OPS_TMP/$2.attrs.json"
}
attr() { json attr "$OPS_TMP/$1.attrs.json" "$2"; }
