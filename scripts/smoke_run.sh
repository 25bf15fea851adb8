#!/usr/bin/env bash
# Start `make run` on a free port with a throwaway var/ directory, wait for the
# sign-in page, sign in as the demo admin over HTTP, check the landing page
# shows Settings > Defender Experts for Contoso, then stop it with Ctrl-C (SIGINT).
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
var_dir=$(mktemp -d)
jar=$(mktemp)
log=$(mktemp)
# Only this script's own variables: the run command must work on the defaults.
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL PORT="$port" PORTAL_VAR_DIR="$var_dir" \
  setsid make run >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -INT -- -"$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- -"$pid" 2>/dev/null || true
  rm -rf "$var_dir" "$jar"
}
trap cleanup EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 240); do
  curl -fsS -o /dev/null "$base/sign-in/" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "make run exited early:"; cat "$log"; exit 1; }
  sleep 1
done
curl -fsS -c "$jar" -b "$jar" -o /dev/null "$base/sign-in/" || { echo "sign-in page never came up:"; cat "$log"; exit 1; }
token=$(awk '$6 == "csrftoken" {print $7}' "$jar")
landing=$(curl -fsS -c "$jar" -b "$jar" -L -e "$base/sign-in/" \
  --data-urlencode "csrfmiddlewaretoken=$token" \
  --data-urlencode "login=admin@contoso.example" \
  --data-urlencode "password=${DEMO_PASSWORD:-Defender-Demo-2026!}" \
  -w '\n%{url_effective}' "$base/sign-in/")
final_url=$(printf '%s' "$landing" | tail -n1)
# Admins sign in with a second factor: the demo users' authenticator code, as `manage.py demo_code` prints it.
case "$final_url" in
  */account/two-factor/authenticate/*)
    code=$(env -u DATABASE_URL PORTAL_VAR_DIR="$var_dir" .venv/bin/python manage.py demo_code | awk '{print $1}')
    token=$(awk '$6 == "csrftoken" {print $7}' "$jar")
    landing=$(curl -fsS -c "$jar" -b "$jar" -L -e "$final_url" \
      --data-urlencode "csrfmiddlewaretoken=$token" --data-urlencode "code=$code" \
      -w '\n%{url_effective}' "$final_url")
    final_url=$(printf '%s' "$landing" | tail -n1) ;;
esac
case "$final_url" in
  */settings/defender-experts/) ;;
  *) echo "sign-in did not land on Settings > Defender Experts (ended at $final_url)"; cat "$log"; exit 1 ;;
esac
printf '%s' "$landing" | grep -q "Contoso" || { echo "landing page does not show Contoso"; exit 1; }
grep -q "Sign in at" "$log" || { echo "make run did not print where to sign in"; cat "$log"; exit 1; }
grep -q "celery@\|worker@" "$log" || { echo "the Celery worker did not start"; cat "$log"; exit 1; }
grep -qi "beat: Starting" "$log" || { echo "Celery beat did not start"; cat "$log"; exit 1; }
echo "make run: served $base, signed in as admin@contoso.example (password and authenticator code) and saw Contoso's Settings > Defender Experts"
