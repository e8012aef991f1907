#!/usr/bin/env bash
# Makes every tool the tests and the local cluster need available, without containers:
#
#   kube-apiserver, kube-controller-manager, kubectl, etcd  built from hack/k8s (pinned there)
#   helm                                                    built with `go install` (pinned below)
#   Gateway API standard CRDs                               from the Go module (pinned below)
#   prometheus, promtool, openssl                           Debian packages
#
# Builds go into a cache outside the repository, one directory per version, and are reused:
#   ${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/tools/
# A directory counts as complete only once its stamp file is written, which happens last,
# so an interrupted build is redone on the next run. The repository gets symlinks:
#   .dev/bin/{kube-apiserver,kube-controller-manager,kubectl,etcd,helm,prometheus,promtool}
#   .dev/gateway-api/*.yaml
#
# If KUBEBUILDER_ASSETS points at a directory holding kube-apiserver, etcd and kubectl (as
# used by controller-runtime's envtest), those binaries are used and only what is missing
# there (usually kube-controller-manager) is built.
#
# Usage: bash hack/tools.sh [STEP...]   STEP: system, gateway-api, helm, k8s, links (all by default)
set -euo pipefail

HELM_VERSION=v3.19.0
GATEWAY_API_VERSION=v1.4.1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/tools"
K8S_MOD="$ROOT/hack/k8s"
DEV="$ROOT/.dev"
START_NS=$(date +%s%N)

log() { printf '[tools] %s\n' "$*"; }
die() {
	printf '[tools] error: %s\n' "$*" >&2
	exit 1
}
elapsed() { # seconds since $1 (nanoseconds), one decimal
	local now
	now=$(date +%s%N)
	awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1fs", (b - a) / 1e9 }'
}

# The version of a module required by hack/k8s/go.mod.
gomod_version() {
	awk -v m="$1" '$1 == "//" { next }
		{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' \
		"$K8S_MOD/go.mod"
}

K8S_VERSION="$(gomod_version k8s.io/kubernetes)"
ETCD_VERSION="$(gomod_version go.etcd.io/etcd/server/v3)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" ]] || die "cannot read versions from $K8S_MOD/go.mod"
K8S_DIR="$CACHE/k8s-$K8S_VERSION"
HELM_DIR="$CACHE/helm-$HELM_VERSION-k8s1.35"
GATEWAY_DIR="$CACHE/gateway-api-$GATEWAY_API_VERSION"

need_go() {
	command -v go >/dev/null || die "go is not on PATH (Go >= 1.25 is needed to build the tools)"
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# Serialise concurrent runs on the same cache; temporary build directories go on exit.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
TMPDIRS=()
cleanup() { ((${#TMPDIRS[@]} == 0)) || rm -rf "${TMPDIRS[@]}"; }
trap cleanup EXIT
new_tmp() { # prefix; sets $tmp (not in a subshell, so cleanup sees it)
	tmp=$(mktemp -d "$CACHE/.$1.XXXXXX")
	TMPDIRS+=("$tmp")
	chmod 755 "$tmp"
}

# ---------------------------------------------------------------- Debian packages
step_system() {
	local t0 missing=()
	t0=$(date +%s%N)
	[[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]] || missing+=(prometheus)
	command -v openssl >/dev/null || missing+=(openssl)
	if ((${#missing[@]} == 0)); then
		log "system packages: present (prometheus $(/usr/bin/prometheus --version 2>&1 |
			awk 'NR == 1 { print $3 }'), $(openssl version | awk '{ print $1, $2 }'))"
		return
	fi
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
	export DEBIAN_FRONTEND=noninteractive
	local updated=0
	if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
		log "apt-get update"
		as_root apt-get update -qq
		updated=1
	fi
	# Installing prometheus must not start the packaged service: tests run their own
	# Prometheus processes. policy-rc.d (exit 101) tells invoke-rc.d not to start anything.
	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		created_policy=1
	fi
	log "apt-get install ${missing[*]}"
	local rc=0
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
	if ((rc != 0 && updated == 0)); then # stale package lists
		log "apt-get update (install failed with the current package lists)"
		rc=0
		as_root apt-get update -qq &&
			as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			rc=$?
	fi
	((created_policy)) && as_root rm -f "$policy"
	((rc == 0)) || die "apt-get install ${missing[*]} failed"
	if [[ " ${missing[*]} " == *" prometheus "* ]]; then
		if [[ -d /run/systemd/system ]]; then
			as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
		else
			as_root update-rc.d prometheus disable >/dev/null 2>&1 || true
			if [[ -x /etc/init.d/prometheus ]] && /etc/init.d/prometheus status >/dev/null 2>&1; then
				as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
			fi
		fi
	fi
	[[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]] || die "prometheus did not install"
	/usr/bin/prometheus --version >/dev/null 2>&1 || die "/usr/bin/prometheus does not run"
	log "system packages: installed ${missing[*]} in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- Gateway API CRDs
step_gateway_api() {
	local stamp="$GATEWAY_DIR/.complete" t0 dir tmp
	if [[ -f $stamp ]]; then
		log "gateway-api $GATEWAY_API_VERSION: cached"
		return
	fi
	need_go
	t0=$(date +%s%N)
	dir=$(cd "$CACHE" && go mod download -json \
		"sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n "$dir" && -d "$dir/config/crd/standard" ]] ||
		die "go mod download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION gave no CRDs"
	new_tmp gateway-api
	cp "$dir"/config/crd/standard/*.yaml "$tmp/"
	chmod 644 "$tmp"/*.yaml
	rm -rf "$GATEWAY_DIR"
	mv "$tmp" "$GATEWAY_DIR"
	date -u +%FT%TZ >"$stamp"
	log "gateway-api $GATEWAY_API_VERSION: $(find "$GATEWAY_DIR" -name '*.yaml' | wc -l) CRDs in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- helm
step_helm() {
	local stamp="$HELM_DIR/.complete" t0 tmp
	if [[ -f $stamp && -x $HELM_DIR/helm ]]; then
		log "helm $HELM_VERSION: cached"
		return
	fi
	need_go
	t0=$(date +%s%N)
	log "helm $HELM_VERSION: building (a few minutes on a cold Go cache)"
	new_tmp helm
	(cd "$tmp" && GOBIN="$tmp" go install -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=35" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
	"$tmp/helm" version --short >/dev/null || die "the built helm does not run"
	rm -rf "$HELM_DIR"
	mv "$tmp" "$HELM_DIR"
	"$HELM_DIR/helm" version --short >"$stamp"
	log "helm $HELM_VERSION: built in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- Kubernetes + etcd
# The stamp records what the binaries were built from; a change to it rebuilds.
k8s_fingerprint() {
	{
		echo "k8s=$K8S_VERSION etcd=$ETCD_VERSION assets=${KUBEBUILDER_ASSETS:-}"
		cat "$K8S_MOD/go.mod" "$K8S_MOD/go.sum"
	} | sha256sum | cut -d' ' -f1
}

verify_k8s() { # dir
	"$1/kube-apiserver" --version >/dev/null &&
		"$1/kube-controller-manager" --version >/dev/null &&
		"$1/kubectl" version --client >/dev/null &&
		"$1/etcd" --version >/dev/null
}

step_k8s() {
	local stamp="$K8S_DIR/.complete" fp t0 tmp
	fp=$(k8s_fingerprint)
	if [[ -f $stamp && "$(cat "$stamp")" == "$fp" ]] && verify_k8s "$K8S_DIR" 2>/dev/null; then
		log "kubernetes $K8S_VERSION + etcd $ETCD_VERSION: cached"
		return
	fi
	t0=$(date +%s%N)
	new_tmp k8s
	local -A pkgs=(
		[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
		[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
		[kubectl]=k8s.io/kubernetes/cmd/kubectl
		[etcd]=go.etcd.io/etcd/server/v3
	)
	local name build=() names=()
	for name in kube-apiserver kube-controller-manager kubectl etcd; do
		if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/$name ]]; then
			log "$name: using $KUBEBUILDER_ASSETS/$name"
			ln -s "$KUBEBUILDER_ASSETS/$name" "$tmp/$name"
		else
			build+=("${pkgs[$name]}")
			names+=("$name")
		fi
	done
	if ((${#build[@]})); then
		need_go
		log "kubernetes $K8S_VERSION + etcd $ETCD_VERSION: building ${names[*]}" \
			"(many minutes on a cold Go cache, seconds on a warm one)"
		local minor=${K8S_VERSION#v*.}
		minor=${minor%%.*}
		local major=${K8S_VERSION#v}
		major=${major%%.*}
		local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
		ldflags+=" -X k8s.io/component-base/version.gitMajor=$major"
		ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
		(cd "$K8S_MOD" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${build[@]}")
		# The etcd server's main package is go.etcd.io/etcd/server/v3: go names its binary
		# "server" (or "v3" with older toolchains).
		local built
		for built in server v3; do
			if [[ -e "$tmp/$built" && ! -e "$tmp/etcd" ]]; then mv "$tmp/$built" "$tmp/etcd"; fi
		done
	fi
	verify_k8s "$tmp" || die "a freshly built control plane binary does not run (see above)"
	rm -rf "$K8S_DIR"
	mv "$tmp" "$K8S_DIR"
	echo "$fp" >"$stamp"
	log "kubernetes $K8S_VERSION + etcd $ETCD_VERSION: ready in $(elapsed "$t0")" \
		"($("$K8S_DIR/kube-apiserver" --version))"
}

# ---------------------------------------------------------------- links in the repo
link() { # target name-in-.dev/bin
	[[ -e $1 ]] || die "$1 is missing; run: bash hack/tools.sh"
	ln -sfn "$1" "$DEV/bin/$2"
}

step_links() {
	mkdir -p "$DEV/bin"
	local name
	for name in kube-apiserver kube-controller-manager kubectl etcd; do
		link "$K8S_DIR/$name" "$name"
	done
	link "$HELM_DIR/helm" helm
	link /usr/bin/prometheus prometheus
	link /usr/bin/promtool promtool
	if [[ -e $DEV/gateway-api && ! -L $DEV/gateway-api ]]; then
		rm -rf "$DEV/gateway-api"
	fi
	ln -sfn "$GATEWAY_DIR" "$DEV/gateway-api"
	log "linked .dev/bin/ and .dev/gateway-api/ (cache: $CACHE)"
}

steps=("$@")
((${#steps[@]})) || steps=(system gateway-api helm k8s links)
for step in "${steps[@]}"; do
	case $step in
	system) step_system ;;
	gateway-api) step_gateway_api ;;
	helm) step_helm ;;
	k8s) step_k8s ;;
	links) step_links ;;
	*) die "unknown step: $step (known: system gateway-api helm k8s links)" ;;
	esac
done
log "done in $(elapsed "$START_NS")"
