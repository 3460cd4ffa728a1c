# Sourced by the tls tests: a real im-gateway serving a TLS port, with no logic behind it (the
# connections never get past TLS, and the gateway accepts without logic). The caller sets ROOT,
# GATEWAY and WORK, and defines fail().

gateway_pid=""
port=""

# start_tls_gateway CERT_FILE KEY_FILE [VAR=VALUE...]: starts it (its log in $WORK/gateway.log)
# and waits for its ready line; sets gateway_pid and port (the TLS port).
start_tls_gateway() {
  local cert="$1" key="$2"
  shift 2
  env IM_GATEWAY_LISTEN=127.0.0.1:0 IM_GATEWAY_GRPC_LISTEN=127.0.0.1:0 \
    IM_GATEWAY_METRICS_LISTEN=127.0.0.1:0 IM_GATEWAY_LOGIC_TARGET=127.0.0.1:1 \
    IM_GATEWAY_TLS_LISTEN=127.0.0.1:0 IM_GATEWAY_TLS_CERT_FILE="$cert" \
    IM_GATEWAY_TLS_KEY_FILE="$key" IM_GATEWAY_DRAIN_TIMEOUT_MS=1000 "$@" \
    "$GATEWAY" --config "$ROOT/deploy/local/gateway.yaml" >"$WORK/gateway.log" 2>&1 &
  gateway_pid=$!
  for _ in $(seq 1 100); do
    port="$(grep -m1 -o 'tls_port=[0-9]*' "$WORK/gateway.log" 2>/dev/null | cut -d= -f2 || true)"
    [ -n "$port" ] && break
    kill -0 "$gateway_pid" 2>/dev/null || fail "im-gateway exited before it was ready"
    sleep 0.1
  done
  [ -n "$port" ] && [ "$port" != 0 ] || fail "no TLS port in the ready line"
}

# SIGTERM, and the gateway must exit 0.
stop_tls_gateway() {
  kill -TERM "$gateway_pid"
  local status=0
  wait "$gateway_pid" || status=$?
  gateway_pid=""
  [ "$status" = 0 ] || fail "im-gateway exited with $status after SIGTERM"
}

# For an EXIT trap: whatever state the test is in.
kill_tls_gateway() {
  if [ -n "$gateway_pid" ]; then kill -TERM "$gateway_pid" 2>/dev/null || true; fi
}
