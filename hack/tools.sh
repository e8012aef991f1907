#!/usr/bin/env bash
# Makes every tool the tests and the local cluster need available, without containers:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler,
#   kubelet, kube-proxy, kubectl, etcd                      built from hack/k8s (pinned there)
#   helm                                                    built with `go install` (pinned below)
#   coredns                                                 built with `go install` (pinned below)
#   traefik                                                 built from its module source (pinned)
#   Gateway API standard CRDs                               from the Go module (pinned below)
#   prometheus, promtool                                    built with `go install` (pinned below)
#   grafana-check (dashboard schema check)                  built from hack/grafana-check
#   openssl                                                 Debian package
#   containerd, runc, CNI plugins, iptables, conntrack,
#   iproute2, busybox-static, gcc, libc6-dev                Debian packages (for the node)
#   mmdebstrap                                              Debian package (the image's base)
#   the pause and busybox images                            built by hack/node.py (cached)
#
# Builds go into a cache outside the repository, one directory per version, and are reused:
#   ${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/tools/
# A directory counts as complete only once its stamp file is written, which happens last,
# so an interrupted build is redone on the next run. The repository gets symlinks:
#   .dev/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl,
#             etcd,helm,coredns,traefik,prometheus,promtool,grafana-check}
#   .dev/gateway-api/*.yaml
#
# If KUBEBUILDER_ASSETS points at a directory holding kube-apiserver, etcd and kubectl (as
# used by controller-runtime's envtest), those binaries are used and only what is missing
# there (usually kube-controller-manager) is built.
#
# Usage: bash hack/tools.sh [STEP...]
#   STEP: system, gateway-api, helm, k8s, coredns, traefik, prometheus, grafana-check, images,
#         links (all by default)
set -euo pipefail

HELM_VERSION=v3.19.0
GATEWAY_API_VERSION=v1.4.1
COREDNS_VERSION=v1.14.7
# Prometheus 3.16.0: its Go module is tagged v0.316.0.
PROMETHEUS_VERSION=v0.316.0
# v3.7.x does not build from its module zip (pkg/config/dynamic/ext is missing).
TRAEFIK_VERSION=v3.6.12

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
COREDNS_DIR="$CACHE/coredns-$COREDNS_VERSION"
TRAEFIK_DIR="$CACHE/traefik-$TRAEFIK_VERSION"
PROMETHEUS_DIR="$CACHE/prometheus-$PROMETHEUS_VERSION"
GRAFANA_CHECK_MOD="$ROOT/hack/grafana-check"
# Keyed by its sources (go.mod pins the Grafana Foundation SDK, go.sum its checksum).
GRAFANA_CHECK_HASH=$(cat "$GRAFANA_CHECK_MOD"/* | sha256sum | cut -c1-16)
GRAFANA_CHECK_DIR="$CACHE/grafana-check-$GRAFANA_CHECK_HASH"

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
# Whether the Debian package that provides what we need is there.
have_package() { # package
	case $1 in
	openssl) command -v openssl >/dev/null ;;
	# The node (hack/node.py): containerd with ctr and its runc shim, runc, the CNI plugins.
	containerd) [[ -x /usr/bin/containerd && -x /usr/bin/ctr && -x /usr/bin/containerd-shim-runc-v2 ]] ;;
	runc) [[ -x /usr/sbin/runc ]] ;;
	containernetworking-plugins)
		[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap ]] ;;
	iptables) [[ -x /usr/sbin/iptables && -x /usr/sbin/iptables-restore ]] ;;
	conntrack) [[ -x /usr/sbin/conntrack ]] ;;
	iproute2) [[ -x /usr/sbin/ip || -x /sbin/ip ]] ;;
	# A static busybox: the test image's only binary.
	busybox-static) [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 ;;
	# gcc -static for the pause image.
	gcc) command -v gcc >/dev/null ;;
	libc6-dev) command -v gcc >/dev/null && [[ -f $(gcc -print-file-name=libc.a) ]] ;;
	# The modelrollout image's Debian base (hack/images.py).
	mmdebstrap) command -v mmdebstrap >/dev/null ;;
	# The dashboard's browser tests (Playwright drives Debian's Chromium, never its own).
	chromium) [[ -x /usr/bin/chromium ]] ;;
	fonts-dejavu-core) [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] ;;
	*) die "no check for package $1" ;;
	esac
}

SYSTEM_PACKAGES=(openssl containerd runc containernetworking-plugins iptables conntrack
	iproute2 busybox-static gcc libc6-dev mmdebstrap chromium fonts-dejavu-core)

step_system() {
	local t0 missing=() package
	t0=$(date +%s%N)
	for package in "${SYSTEM_PACKAGES[@]}"; do
		have_package "$package" || missing+=("$package")
	done
	if ((${#missing[@]} == 0)); then
		log "system packages: present ($(openssl version | awk '{ print $1, $2 }')," \
			"containerd $(containerd --version | awk '{ print $3 }')," \
			"runc $(runc --version | awk 'NR == 1 { print $3 }'))"
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
	# Installing containerd must not start the packaged service: the node runs its own
	# (policy-rc.d exiting 101 tells invoke-rc.d not to start anything).
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
	local service
	for service in containerd; do
		[[ " ${missing[*]} " == *" $service "* ]] || continue
		if [[ -d /run/systemd/system ]]; then
			as_root systemctl disable --now "$service.service" >/dev/null 2>&1 || true
		else
			as_root update-rc.d "$service" disable >/dev/null 2>&1 || true
			if [[ -x /etc/init.d/$service ]] && "/etc/init.d/$service" status >/dev/null 2>&1; then
				as_root "/etc/init.d/$service" stop >/dev/null 2>&1 || true
			fi
		fi
	done
	for package in "${missing[@]}"; do
		have_package "$package" || die "$package did not install"
	done
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

K8S_NAMES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd)

verify_k8s() { # dir
	"$1/kube-apiserver" --version >/dev/null &&
		"$1/kube-controller-manager" --version >/dev/null &&
		"$1/kube-scheduler" --version >/dev/null &&
		"$1/kubelet" --version >/dev/null &&
		"$1/kube-proxy" --version >/dev/null &&
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
		[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
		[kubelet]=k8s.io/kubernetes/cmd/kubelet
		[kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
		[kubectl]=k8s.io/kubernetes/cmd/kubectl
		[etcd]=go.etcd.io/etcd/server/v3
	)
	local name build=() names=()
	for name in "${K8S_NAMES[@]}"; do
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

# ---------------------------------------------------------------- CoreDNS
step_coredns() {
	local stamp="$COREDNS_DIR/.complete" t0 tmp
	if [[ -f $stamp && -x $COREDNS_DIR/coredns ]]; then
		log "coredns $COREDNS_VERSION: cached"
		return
	fi
	need_go
	t0=$(date +%s%N)
	log "coredns $COREDNS_VERSION: building (about 7 minutes on a cold Go cache)"
	new_tmp coredns
	(cd "$tmp" && GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
		"github.com/coredns/coredns@$COREDNS_VERSION")
	"$tmp/coredns" -version >/dev/null || die "the built coredns does not run"
	rm -rf "$COREDNS_DIR"
	mv "$tmp" "$COREDNS_DIR"
	"$COREDNS_DIR/coredns" -version | head -1 >"$stamp"
	log "coredns $COREDNS_VERSION: built in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- Prometheus
# Debian's prometheus package leaves out the Kubernetes service discovery, so Prometheus and
# promtool are built from the module (Prometheus 3.x is tagged v0.3XX.Y there).
step_prometheus() {
	local stamp="$PROMETHEUS_DIR/.complete" t0 tmp version
	if [[ -f $stamp && -x $PROMETHEUS_DIR/prometheus && -x $PROMETHEUS_DIR/promtool ]]; then
		log "prometheus $PROMETHEUS_VERSION: cached"
		return
	fi
	need_go
	t0=$(date +%s%N)
	log "prometheus $PROMETHEUS_VERSION: building (about 10 minutes on a cold Go cache)"
	new_tmp prometheus
	version=${PROMETHEUS_VERSION#v0.}
	version="3.${version#3}"
	(cd "$tmp" && GOBIN="$tmp" go install -trimpath \
		-ldflags "-s -w -X github.com/prometheus/common/version.Version=$version" \
		"github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION")
	"$tmp/prometheus" --version >/dev/null || die "the built prometheus does not run"
	rm -rf "$PROMETHEUS_DIR"
	mv "$tmp" "$PROMETHEUS_DIR"
	"$PROMETHEUS_DIR/prometheus" --version | head -1 >"$stamp"
	log "prometheus $PROMETHEUS_VERSION: built in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- Traefik
# `go install github.com/traefik/traefik/v3/cmd/traefik@...` refuses the module (it has replace
# directives), so it is built inside a writable copy of its module source.
step_traefik() {
	local stamp="$TRAEFIK_DIR/.complete" t0 tmp dir
	if [[ -f $stamp && -x $TRAEFIK_DIR/traefik ]]; then
		log "traefik $TRAEFIK_VERSION: cached"
		return
	fi
	need_go
	t0=$(date +%s%N)
	log "traefik $TRAEFIK_VERSION: building (about 7 minutes on a cold Go cache)"
	dir=$(cd "$CACHE" && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n "$dir" && -d "$dir/cmd/traefik" ]] ||
		die "go mod download github.com/traefik/traefik/v3@$TRAEFIK_VERSION gave no source"
	new_tmp traefik
	mkdir "$tmp/src" "$tmp/bin"
	cp -R "$dir/." "$tmp/src/"
	chmod -R u+w "$tmp/src"
	(cd "$tmp/src" && go build -trimpath \
		-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
		-o "$tmp/bin/traefik" ./cmd/traefik)
	"$tmp/bin/traefik" version >/dev/null || die "the built traefik does not run"
	mv "$tmp/bin/traefik" "$tmp/traefik"
	rm -rf "$tmp/src" "$tmp/bin"
	rm -rf "$TRAEFIK_DIR"
	mv "$tmp" "$TRAEFIK_DIR"
	"$TRAEFIK_DIR/traefik" version | awk '$1 == "Version:" { print $2 }' >"$stamp"
	log "traefik $TRAEFIK_VERSION: built in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- grafana-check
# Checks dashboard JSON against Grafana's schema, from the Grafana Foundation SDK's Go types.
step_grafana_check() {
	local stamp="$GRAFANA_CHECK_DIR/.complete" t0 tmp rc=0
	if [[ -f $stamp && -x $GRAFANA_CHECK_DIR/grafana-check ]]; then
		log "grafana-check $GRAFANA_CHECK_HASH: cached"
		return
	fi
	need_go
	t0=$(date +%s%N)
	log "grafana-check $GRAFANA_CHECK_HASH: building (about a minute on a cold Go cache)"
	new_tmp grafana-check
	(cd "$GRAFANA_CHECK_MOD" && go build -trimpath -ldflags "-s -w" -o "$tmp/grafana-check" .)
	"$tmp/grafana-check" 2>/dev/null || rc=$?
	((rc == 2)) || die "the built grafana-check does not run (exit $rc without arguments, not 2)"
	rm -rf "$GRAFANA_CHECK_DIR"
	mv "$tmp" "$GRAFANA_CHECK_DIR"
	awk '$1 == "require" { print $2, $3 }' "$GRAFANA_CHECK_MOD/go.mod" >"$stamp"
	log "grafana-check $GRAFANA_CHECK_HASH: built in $(elapsed "$t0") ($(cat "$stamp"))"
}

# ---------------------------------------------------------------- node images
# The pause and busybox images as docker-archive tars, built by hack/node.py (a static C
# program and Debian's busybox-static) into $CACHE/images-HASH, keyed by their content.
step_images() {
	local t0 out
	t0=$(date +%s%N)
	out=$(MODELROLLOUT_CACHE="$(dirname "$CACHE")" python3 "$ROOT/hack/node.py" images) ||
		die "building the node images failed"
	log "node images: $(awk '{ printf "%s ", $1 }' <<<"$out")in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- links in the repo
link() { # target name-in-.dev/bin
	[[ -e $1 ]] || die "$1 is missing; run: bash hack/tools.sh"
	ln -sfn "$1" "$DEV/bin/$2"
}

step_links() {
	mkdir -p "$DEV/bin"
	local name
	for name in "${K8S_NAMES[@]}"; do
		link "$K8S_DIR/$name" "$name"
	done
	link "$HELM_DIR/helm" helm
	link "$COREDNS_DIR/coredns" coredns
	link "$TRAEFIK_DIR/traefik" traefik
	link "$PROMETHEUS_DIR/prometheus" prometheus
	link "$PROMETHEUS_DIR/promtool" promtool
	link "$GRAFANA_CHECK_DIR/grafana-check" grafana-check
	if [[ -e $DEV/gateway-api && ! -L $DEV/gateway-api ]]; then
		rm -rf "$DEV/gateway-api"
	fi
	ln -sfn "$GATEWAY_DIR" "$DEV/gateway-api"
	log "linked .dev/bin/ and .dev/gateway-api/ (cache: $CACHE)"
}

steps=("$@")
((${#steps[@]})) || steps=(system gateway-api helm k8s coredns traefik prometheus grafana-check images links)
for step in "${steps[@]}"; do
	case $step in
	system) step_system ;;
	gateway-api) step_gateway_api ;;
	helm) step_helm ;;
	k8s) step_k8s ;;
	coredns) step_coredns ;;
	traefik) step_traefik ;;
	prometheus) step_prometheus ;;
	grafana-check) step_grafana_check ;;
	images) step_images ;;
	links) step_links ;;
	*) die "unknown step: $step (known: system gateway-api helm k8s coredns traefik prometheus grafana-check images links)" ;;
	esac
done
log "done in $(elapsed "$START_NS")"
