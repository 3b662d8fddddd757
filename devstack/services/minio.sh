#!/usr/bin/env bash
# MinIO — a real S3-compatible object store on loopback for the s3a lakehouse
# and the S3 user-space backend. Built from source with `go install` through
# the Go module proxy into .devstack/bin (no binary download), once: `build`
# is idempotent and `up` calls it.
#   minio.sh build | up | down
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
DIR="$DEVSTACK_DIR/minio"
BIN_DIR="$DEVSTACK_DIR/bin"
# MinIO publishes no semver tags; this is the module proxy's pseudo-version of
# the upstream commit we test against (go list -m github.com/minio/minio@latest).
MINIO_VERSION=${AVIP_DEVSTACK_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
PORT=${AVIP_DEVSTACK_MINIO_PORT:-}  # S3 on PORT, console on PORT+1; default: first free pair from 9310
ACCESS_KEY=avip-test
SECRET_KEY=avip-test-secret-key
BUCKET=avip-test

build() {
  go_install minio github.com/minio/minio "$MINIO_VERSION" " (first time: several minutes)"
}

# Create the test bucket with one SigV4-signed S3 `PUT /bucket`, signed with
# Python's standard library (no `mc` client build, no boto3 dependency).
make_bucket() {
  "$VENV_BIN/python" - "$PORT" "$ACCESS_KEY" "$SECRET_KEY" "$BUCKET" <<'PY'
import datetime, hashlib, hmac, sys, urllib.error, urllib.request
port, access, secret, bucket = sys.argv[1:5]
host = f"127.0.0.1:{port}"
now = datetime.datetime.now(datetime.UTC)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
payload = hashlib.sha256(b"").hexdigest()
headers = f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n"
signed = "host;x-amz-content-sha256;x-amz-date"
canonical = f"PUT\n/{bucket}\n\n{headers}\n{signed}\n{payload}"
scope = f"{day}/us-east-1/s3/aws4_request"
to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
key = ("AWS4" + secret).encode()
for part in (day, "us-east-1", "s3", "aws4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
request = urllib.request.Request(f"http://{host}/{bucket}", method="PUT", headers={
    "x-amz-date": amz_date, "x-amz-content-sha256": payload,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                     f"SignedHeaders={signed}, Signature={signature}"})
try:
    urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as err:
    body = err.read().decode(errors="replace")
    if "BucketAlreadyOwnedByYou" not in body:
        sys.exit(f"devstack: creating bucket {bucket} failed: {err.code} {body}")
PY
}

up() {
  build
  mkdir -p "$DIR/data"
  stop_pids "$DIR"
  [ -n "$PORT" ] || PORT=$(choose_port "$DIR" 9310 2)
  CONSOLE_PORT=$((PORT + 1))
  start_daemon "$DIR" "$DIR/minio.log" \
    env MINIO_ROOT_USER="$ACCESS_KEY" MINIO_ROOT_PASSWORD="$SECRET_KEY" \
      MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 \
      "$BIN_DIR/minio" server "$DIR/data" --quiet \
      --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$CONSOLE_PORT"
  wait_port 127.0.0.1 "$PORT" 90 "minio" "$DAEMON_PID" "$DIR/minio.log"
  for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:$PORT/minio/health/ready" >/dev/null && break
    sleep 0.5
  done
  make_bucket
  sed -i '/^AVIP_TEST_S3_/d' "$DEVSTACK_DIR/env"  # re-running one service must not duplicate
  {
    echo "AVIP_TEST_S3_ENDPOINT=http://127.0.0.1:$PORT"
    echo "AVIP_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
    echo "AVIP_TEST_S3_SECRET_KEY=$SECRET_KEY"
    echo "AVIP_TEST_S3_BUCKET=$BUCKET"
  } >> "$DEVSTACK_DIR/env"
}

down() { stop_pids "$DIR"; }

"$@"
