#!/usr/bin/env bash
# Checks by hand that a cluster of hack/cluster.py really works: Pods run, Services route, DNS
# answers, logs/exec work, a Job completes, an HTTPRoute splits traffic by weight, Pods cannot
# leave the node. Prints the measured numbers.
#
#   python3 hack/cluster.py up --dir /tmp/mrc --kubeconfig /tmp/mrc.kubeconfig
#   KUBECONFIG=/tmp/mrc.kubeconfig bash hack/node-smoke.sh
# Debian's busybox-static 1.35 wget crashes (SIGSEGV) with -T: Pods use `timeout N wget`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.dev/bin:$PATH"
: "${KUBECONFIG:?set KUBECONFIG to the admin kubeconfig of the cluster}"
NS=smoke
GATEWAY=http://10.254.0.1:8000
IMAGE=modelrollout.local/busybox:1

say() { printf '[smoke] %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }

# A Deployment of busybox httpd answering with its Pod name, and a Service in front.
web() { # name replicas
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, namespace: $NS}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: $IMAGE
        imagePullPolicy: Never
        command: [sh, -c, 'echo -n "$1 " >/www/index.html; hostname >>/www/index.html; exec httpd -f -p 8080 -h /www']
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: $NS}
spec:
  selector: {app: $1}
  ports: [{port: 80, targetPort: 8080}]
EOF
}

kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$NS" >/dev/null
t0=$(now)
{
	web web 2
	echo ---
	web v1 1
	echo ---
	web v2 1
} | kubectl apply -f - >/dev/null
kubectl -n "$NS" rollout status deployment/web --timeout=120s >/dev/null
say "Deployment web (2 replicas) available in $(since "$t0")"
kubectl -n "$NS" rollout status deployment/v1 --timeout=120s >/dev/null
kubectl -n "$NS" rollout status deployment/v2 --timeout=120s >/dev/null

# From the host: each Pod IP, then the ClusterIP.
for ip in $(kubectl -n "$NS" get pods -l app=web -o jsonpath='{.items[*].status.podIP}'); do
	say "host -> pod $ip:8080: $(curl -sS -m 3 "http://$ip:8080/")"
done
cluster_ip=$(kubectl -n "$NS" get service web -o jsonpath='{.spec.clusterIP}')
t0=$(now)
until curl -s -m 1 -o /dev/null "http://$cluster_ip/"; do sleep 0.05; done # kube-proxy's sync
say "host -> ClusterIP $cluster_ip:80 (answering $(since "$t0") after the rollout): $(curl -sS -m 3 "http://$cluster_ip/")"
t0=$(now)
# The range's last address: never allocated to a Service.
if curl -sS -m 3 http://10.96.0.255/ 2>/dev/null; then
	say "FAIL: an unused ClusterIP answered"
	exit 1
fi
say "host -> unused ClusterIP 10.96.0.255: refused after $(since "$t0")"

# From a Pod: the Service by DNS name, the API server, a name outside the cluster.
pod=$(kubectl -n "$NS" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
say "pod -> web.$NS.svc.cluster.local: $(kubectl -n "$NS" exec "$pod" -- timeout 3 wget -q -O - "http://web.$NS.svc.cluster.local/")"
api=$(kubectl -n "$NS" exec "$pod" -- sh -c \
	'timeout 3 wget -q -O - --no-check-certificate https://kubernetes.default.svc/api 2>&1 || true')
say "pod -> https://kubernetes.default.svc/api: ${api:0:80}"
say "pod -> nslookup example.com: $(kubectl -n "$NS" exec "$pod" -- nslookup example.com 2>&1 | tail -2 | tr '\n' ' ')"
# Egress beyond the node is refused by the node's own rule (no packet is sent out to check).
iptables -S FORWARD | grep -q -- "-j MODELROLLOUT-EGRESS" || { say "FAIL: no egress rule"; exit 1; }
say "egress rule: $(iptables -S MODELROLLOUT-EGRESS | tail -n +2 | tr '\n' ' ')"
say "kubectl logs: $(kubectl -n "$NS" logs "$pod" | wc -l) lines; exec hostname: $(kubectl -n "$NS" exec "$pod" -- hostname)"

# A Job.
t0=$(now)
kubectl -n "$NS" create job hello --image="$IMAGE" -- sh -c 'echo hello from a job' >/dev/null
kubectl -n "$NS" wait --for=condition=Complete job/hello --timeout=120s >/dev/null
say "Job Complete in $(since "$t0"): $(kubectl -n "$NS" logs job/hello)"

# Weighted HTTPRoute through the Gateway.
route() { # weight-v1 weight-v2
	cat <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split, namespace: $NS}
spec:
  parentRefs: [{name: modelrollout, namespace: modelrollout-gateway}]
  rules:
  - backendRefs:
    - {name: v1, port: 80, weight: $1}
    - {name: v2, port: 80, weight: $2}
EOF
}
count() { # requests -> "v1 N v2 M"
	local i out
	out=$(for ((i = 0; i < $1; i++)); do curl -s -m 3 "$GATEWAY/" | cut -d' ' -f1; done | sort | uniq -c)
	echo "$out" | tr -s ' \n' ' '
}
route 80 20 | kubectl apply -f - >/dev/null
t0=$(now)
until [[ $(curl -s -m 2 "$GATEWAY/") == v* ]]; do sleep 0.05; done
say "HTTPRoute answering after $(since "$t0")"
t0=$(now)
say "80/20, 1000 requests: $(count 1000) (in $(since "$t0"))"
route 0 100 | kubectl apply -f - >/dev/null
t0=$(now)
until [[ $(count 20) == " 20 v2 " ]]; do :; done
say "weights changed to 0/100: 20 requests in a row to v2 after $(since "$t0")"
kubectl delete namespace "$NS" --wait=false >/dev/null
say "all checks passed"
