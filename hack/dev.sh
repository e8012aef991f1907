#!/usr/bin/env bash
# `make dev`: a local control plane with the CRDs, two real model servers, the operator
# running in the background, and the example ModelDeployment reconciled.
#
# The control plane has no nodes, so pods never run: the operator uses the local replay
# executor and reaches the model Services through local model servers (--endpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.dev
BIN=$ROOT/.venv/bin
NS=${MODELROLLOUT_DEV_NAMESPACE:-modelrollout-dev}
export KUBECONFIG=$DEV/kubeconfig
export PATH=$DEV/bin:$PATH
RUN=$DEV/run
mkdir -p "$RUN"

stop_pid() {
  local file=$1
  if [[ -f $file ]]; then
    local pid
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  fi
}

start_model_server() { # name version latency
  local name=$1 version=$2 latency=$3
  stop_pid "$RUN/$name.pid"
  rm -f "$RUN/$name.port"
  nohup "$BIN/modelrollout" serve-model --port 0 --port-file "$RUN/$name.port" \
    --model-name fraud-scorer --model-version "$version" --latency-ms "$latency" \
    >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  for _ in $(seq 1 100); do [[ -s $RUN/$name.port ]] && break; sleep 0.1; done
  [[ -s $RUN/$name.port ]] || { echo "model server $name did not start:"; cat "$RUN/$name.log"; exit 1; }
}

echo "==> CRDs"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

echo "==> model servers (stable and candidate tracks)"
start_model_server stable v1 5
start_model_server candidate v1 5
STABLE_URL=http://127.0.0.1:$(cat "$RUN/stable.port")
CANDIDATE_URL=http://127.0.0.1:$(cat "$RUN/candidate.port")

echo "==> operator (namespace $NS, local replay executor)"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
stop_pid "$RUN/operator.pid"
nohup "$BIN/modelrollout" run --namespace "$NS" --kubeconfig "$KUBECONFIG" \
  --replay-executor local --no-wait-for-ready --resync 10 \
  --health-port 0 --metrics-port 0 \
  --endpoint "$NS/fraud-scorer-candidate=$CANDIDATE_URL" \
  --endpoint "$NS/fraud-scorer-stable=$STABLE_URL" \
  >"$RUN/operator.log" 2>&1 &
echo $! >"$RUN/operator.pid"

echo "==> example ModelDeployment (replacing an earlier one)"
kubectl delete modeldeployment fraud-scorer -n "$NS" --ignore-not-found --wait=true --timeout=60s >/dev/null
kubectl apply -n "$NS" -f examples/events-configmap.yaml -f examples/modeldeployment.yaml >/dev/null

deadline=$((SECONDS + 120))
phase=""
while ((SECONDS < deadline)); do
  phase=$(kubectl get md fraud-scorer -n "$NS" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [[ $phase == Production || $phase == RolledBack || $phase == Failed ]] && break
  kill -0 "$(cat "$RUN/operator.pid")" 2>/dev/null || { echo "operator exited:"; tail -20 "$RUN/operator.log"; exit 1; }
  sleep 1
done
kubectl get modeldeployments,replaytests,deployments,services -n "$NS"
echo
if [[ $phase != Production ]]; then
  echo "fraud-scorer did not reach Production (phase: ${phase:-none}); see $RUN/operator.log"
  exit 1
fi
cat <<MSG
The control plane, the operator and two model servers are running.
  export KUBECONFIG=$KUBECONFIG PATH=$DEV/bin:\$PATH
  kubectl get md,rt -n $NS
  kubectl describe md fraud-scorer -n $NS
Logs: $RUN/operator.log. Stop everything with: make dev-down
MSG
