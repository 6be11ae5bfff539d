# The README's two commands: `make demo` and `make test`.  Both install what is missing (Debian
# packages, the virtualenv) and are quick when everything is already there.

VENV        := .venv
BIN         := $(VENV)/bin
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# qemu-utils: the image toolkit's peer in tests; qemu-system-x86 + libvirt: the local host;
# libvirt-dev, pkg-config, gcc, python3-dev: to build the libvirt-python binding.
# mmdebstrap, e2fsprogs: the Debian guest image (built once per machine, cached by recipe).
# openssh-client: glasspane's way into VMs; busybox-static: the container image the tests build;
# postgresql: the shared inventory database the tests run against (beside SQLite);
# chromium: the browser the page's tests drive (Playwright uses it; it never downloads one).
# nodejs, npm: the page's components fetched from the npm registry by its lock file (web/).
APT_PACKAGES := qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-dev pkg-config \
                gcc libc6-dev python3-dev python3-venv mmdebstrap e2fsprogs openssh-client \
                busybox-static postgresql chromium bubblewrap nodejs npm ovmf
DEMO_DIR    ?= demo-work
BENCH_SIZE  ?= 4096
LISTEN      ?= 127.0.0.1:8080

.PHONY: setup system-packages services probe-kernel web-vendor demo test bench bench-images \
        bench-containers bench-pane bench-console lint clean

setup: system-packages $(VENV)/.installed services probe-kernel web-vendor

# The page's ES modules (Preact, htm, signals) into web/static/vendor/ (gitignored): quick
# when the stamp there matches the lock file.
web-vendor: system-packages
	@scripts/vendor-web

services: system-packages
	@scripts/ensure-libvirtd
	@scripts/ensure-postgres
	@# The unprivileged user the server's playbooks run as, inside their sandbox (guests/sandbox.py).
	@id glasspane-ansible >/dev/null 2>&1 || $(SUDO) useradd --system --no-create-home \
	  --home-dir /nonexistent --shell /usr/sbin/nologin glasspane-ansible

# The acceleration probe's payload: a Debian kernel of the guest image's flavour, fetched once
# into the user's cache (only boot/vmlinuz-* taken out of the package); then the verdict, probed
# once per boot of the machine, is printed.
probe-kernel: system-packages $(VENV)/.installed
	@$(BIN)/python -m glasspane.hypervisors.probe_kernel || \
	  { $(SUDO) apt-get update -qq && $(BIN)/python -m glasspane.hypervisors.probe_kernel; }

# A package counts as there when another installed one provides it (NodeSource's nodejs
# provides npm).
system-packages:
	@missing=""; \
	provided=$$(dpkg-query -W -f='$${Provides}, ' 2>/dev/null); \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || \
	  case ", $$provided" in *", $$p,"*|*", $$p "*) ;; *) missing="$$missing $$p";; esac; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(BIN)/glasspane demo story --dir $(DEMO_DIR)
	$(BIN)/glasspane serve --listen $(LISTEN) --bootstrap-admin

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: bench-images bench-containers bench-pane bench-console

bench-images: setup
	$(BIN)/python benchmarks/run.py --size-mib $(BENCH_SIZE)

bench-containers: setup
	$(BIN)/python benchmarks/containers.py

bench-pane: setup
	@dpkg -s wrk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk
	$(BIN)/python benchmarks/pane.py

bench-console: setup
	$(BIN)/python benchmarks/console.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench-work .pytest_cache .mypy_cache .ruff_cache web/node_modules \
	  src/glasspane/web/static/vendor
