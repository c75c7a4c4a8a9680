# pythread: every command a contributor or CI needs. `make test` is the gate.
CARGO ?= cargo
PROPTEST_LONG_CASES ?= 10000

.PHONY: test unit loom fmt-check clippy doc demo bench bench-instructions proptest-long mutants valgrind package package-test
.PHONY: python-module python-clippy conformance conformance-venvs conformance-wheel bench-python

## The full gate: what CI runs (see .ci/run).
test: unit loom fmt-check clippy doc package-test conformance

## The plain suite: unit, integration, model and doc tests.
unit:
	$(CARGO) test

## The whole `cargo test` suite again on the generic wait backend (a mutex and a
## condition variable per waiter: what every non-Linux target uses), selected on
## Linux by `--cfg pythread_generic` (src/sync/mod.rs). The flag changes every
## crate's build, so it has its own target directory. The interruption cases are
## ignored there, with the reason (that backend never reports Intr). See TESTING.md.
GENERIC_FLAGS = --cfg pythread_generic
GENERIC_TARGET_DIR ?= target/generic
.PHONY: test-generic
test: test-generic
test-generic:
	RUSTFLAGS="$(GENERIC_FLAGS)" RUSTDOCFLAGS="$(GENERIC_FLAGS)" CARGO_TARGET_DIR=$(GENERIC_TARGET_DIR) $(CARGO) test

## The loom suite, with the exact command the crate promises to pass.
loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test --release

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

## What a newcomer runs first: a table of threads, idents and outcomes.
demo:
	$(CARGO) run --quiet --example demo

## Benchmarks against std::thread (never part of `make test`; see BENCHMARKS.md):
## criterion timings, then heap use per start and handle sizes.
bench:
	$(CARGO) bench --bench compare
	$(CARGO) bench --bench alloc

## User-space instructions per start+join under callgrind (deterministic; see BENCHMARKS.md),
## then per call of get_ident, current_ident, an RLock acquire+release, and std's
## thread::current().id() (on main, a thread pythread did not start).
BENCH_N ?= 2000
BENCH_CALLS_N ?= 100000
bench-instructions:
	$(CARGO) bench --no-run --bench instructions
	@bin=$$(ls -t target/release/deps/instructions-* | grep -v '\.d$$' | head -1); \
	for v in std std_detached pythread; do \
		base=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $$bin $$v 0 2>&1 | sed -n 's/.*Collected : //p'); \
		full=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $$bin $$v $(BENCH_N) 2>&1 | sed -n 's/.*Collected : //p'); \
		echo "$$v: $$(( (full - base) / $(BENCH_N) )) instructions per start+join"; \
	done; \
	for v in get_ident current_ident rlock std_thread_id; do \
		base=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $$bin $$v 0 2>&1 | sed -n 's/.*Collected : //p'); \
		full=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $$bin $$v $(BENCH_CALLS_N) 2>&1 | sed -n 's/.*Collected : //p'); \
		echo "$$v: $$(( (full - base) * 10 / $(BENCH_CALLS_N) )) tenths of an instruction per call"; \
	done

## The model-based property test with many cases.
proptest-long:
	PROPTEST_CASES=$(PROPTEST_LONG_CASES) $(CARGO) test --release --test model

## Mutation testing of src/ against the plain suite (slow; see TESTING.md), then of
## the files whose code differs under `--cfg pythread_generic` against the suite
## built with it (the generic wait backend and thread_info).
## (`--re` on the mutant names selects those files: `-f` would be added to
## `.cargo/mutants.toml`'s `examine_globs`, not narrow them.)
## Config (exclusions, timeouts): .cargo/mutants.toml. Shrinking is off for the
## model test here: a mutant only has to be caught, and shrinking a hang would
## cost the watchdog's 20 s per attempt.
## The tool is pinned (the exclusions in .cargo/mutants.toml match mutant names,
## which depend on its version): the pinned version is installed unless exactly it
## is already there. 27.1.0 installs with Rust 1.95 (see TESTING.md).
CARGO_MUTANTS_VERSION ?= 27.1.0
mutants:
	@$(CARGO) mutants --version 2>/dev/null | grep -qx 'cargo-mutants $(CARGO_MUTANTS_VERSION)' \
		|| $(CARGO) install --locked cargo-mutants@$(CARGO_MUTANTS_VERSION)
	PROPTEST_MAX_SHRINK_ITERS=0 $(CARGO) mutants --test-tool cargo --no-shuffle -j 2
	PROPTEST_MAX_SHRINK_ITERS=0 RUSTFLAGS="$(GENERIC_FLAGS)" RUSTDOCFLAGS="$(GENERIC_FLAGS)" \
		$(CARGO) mutants --test-tool cargo --no-shuffle -j 2 --output target/mutants-generic \
		--re '^src/(sync/generic|info)\.rs:'

## Mutation testing of the `_threadmodule.c` layer (threadmodule/src, without the Rust-only
## test host `minihost.rs`) against its own tests (TESTING.md). `-f` adds its files to the
## examined globs; `--re` narrows the run to them.
.PHONY: mutants-layer
mutants-layer:
	@$(CARGO) mutants --version 2>/dev/null | grep -qx 'cargo-mutants $(CARGO_MUTANTS_VERSION)' \
		|| $(CARGO) install --locked cargo-mutants@$(CARGO_MUTANTS_VERSION)
	PROPTEST_MAX_SHRINK_ITERS=0 $(CARGO) mutants -p threadmodule -f 'threadmodule/src/*.rs' \
		--re '^threadmodule/src/' --exclude-re 'minihost\.rs' --test-tool cargo --no-shuffle -j 2 \
		--output target/mutants-layer

## valgrind memcheck over a start/join/detach/panic cycle: 0 bytes definitely,
## indirectly or possibly lost. Fails on any memcheck error, on a definite,
## indirect or possible leak (exit code), and unless the summary itself shows 0
## bytes in each of the three (or no heap left at all). One block that is std's,
## not pythread's, is suppressed, and named, in examples/cycle.supp; "still
## reachable" memory (std's, at exit) is not checked.
VALGRIND_LOG ?= target/valgrind-cycle.log
valgrind:
	$(CARGO) build --release --example cycle
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
		--suppressions=examples/cycle.supp \
		--log-file=$(VALGRIND_LOG) ./target/release/examples/cycle; \
		status=$$?; cat $(VALGRIND_LOG); exit $$status
	@grep -Eq 'definitely lost: 0 bytes|All heap blocks were freed' $(VALGRIND_LOG)
	@grep -Eq 'indirectly lost: 0 bytes|All heap blocks were freed' $(VALGRIND_LOG)
	@grep -Eq 'possibly lost: 0 bytes|All heap blocks were freed' $(VALGRIND_LOG)
	@echo "valgrind: 0 bytes definitely, indirectly and possibly lost"

package:
	$(CARGO) package --allow-dirty

## Surface (issue 11): `make valgrind` also runs the TSS / registry cycle.
SURFACE_VALGRIND_LOG ?= target/valgrind-surface-cycle.log
valgrind: valgrind-surface
valgrind-surface:
	$(CARGO) build --release --example surface_cycle
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
		--suppressions=examples/cycle.supp \
		--log-file=$(SURFACE_VALGRIND_LOG) ./target/release/examples/surface_cycle; \
		status=$$?; cat $(SURFACE_VALGRIND_LOG); exit $$status
	@grep -Eq 'definitely lost: 0 bytes|All heap blocks were freed' $(SURFACE_VALGRIND_LOG)
	@grep -Eq 'indirectly lost: 0 bytes|All heap blocks were freed' $(SURFACE_VALGRIND_LOG)
	@grep -Eq 'possibly lost: 0 bytes|All heap blocks were freed' $(SURFACE_VALGRIND_LOG)
	@echo "valgrind (surface): 0 bytes definitely, indirectly and possibly lost"

## The published crate's own tests, run from the package: `cargo package` of the
## root crate only (`-p pythread`, so a workspace member added later is not
## packaged with it), the .crate unpacked into a fresh temporary directory outside
## the repository (no parent workspace, no file that is not in the package), then
## `cargo test` there, with its own target directory inside that temporary
## directory: a fresh build, as a user of the published crate gets (a cache shared
## across runs would reuse test binaries that still carry an earlier run's
## CARGO_MANIFEST_DIR). `--no-verify`: that `cargo test` builds the unpacked crate
## anyway. The temporary directory is removed afterwards.
package-test:
	@set -eu; \
	version=$$($(CARGO) pkgid -p pythread | sed 's/.*[#@]//'); \
	target=$$($(CARGO) metadata --no-deps --format-version 1 | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'); \
	$(CARGO) package --allow-dirty --no-verify -p pythread; \
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/pythread-package-test.XXXXXX"); \
	trap 'rm -rf "$$dir"' EXIT; \
	tar -xzf "$$target/package/pythread-$$version.crate" -C "$$dir"; \
	echo "package-test: cargo test in $$dir/pythread-$$version"; \
	cd "$$dir/pythread-$$version" && CARGO_TARGET_DIR="$$dir/target" $(CARGO) test

## CPython 3.13.15, the 3.13 patch release users run (issue 23 §5), built once from the source
## tarball beside the repository (../shared/cpython-3.13.15/, its README; else /work/shared/...)
## into $(CPYTHON_PATCH_DIR)/install: configure, make -j2, make install (about 3 minutes on 2
## cores; 424 MB). The stamp is written last, so an interrupted build starts again from scratch.
## The sub-make runs without this make's MAKEFLAGS (a `PYTHON=...` given here would otherwise
## override CPython's own Makefile variable of that name).
CPYTHON_PATCH_VERSION ?= 3.13.15
CPYTHON_PATCH_TARBALL ?= $(firstword $(wildcard \
	$(abspath ../shared/cpython-$(CPYTHON_PATCH_VERSION)/Python-$(CPYTHON_PATCH_VERSION).tar.xz) \
	/work/shared/cpython-$(CPYTHON_PATCH_VERSION)/Python-$(CPYTHON_PATCH_VERSION).tar.xz))
CPYTHON_PATCH_SHA256 ?= 1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76
CPYTHON_PATCH_DIR ?= target/cpython-$(CPYTHON_PATCH_VERSION)
CPYTHON_PATCH_PYTHON = $(CPYTHON_PATCH_DIR)/install/bin/python$(basename $(CPYTHON_PATCH_VERSION))
CPYTHON_PATCH_STAMP = $(CPYTHON_PATCH_DIR)/built
.PHONY: cpython-patch
cpython-patch: $(CPYTHON_PATCH_STAMP)
$(CPYTHON_PATCH_STAMP):
	@test -n "$(CPYTHON_PATCH_TARBALL)" || { echo "cpython-patch: FAILED: Python-$(CPYTHON_PATCH_VERSION).tar.xz not found in $(abspath ../shared/cpython-$(CPYTHON_PATCH_VERSION)) or /work/shared/cpython-$(CPYTHON_PATCH_VERSION) (set CPYTHON_PATCH_TARBALL)"; exit 1; }
	@set -e; dir=$(abspath $(CPYTHON_PATCH_DIR)); rm -rf "$$dir"; mkdir -p "$$dir"; \
	echo "cpython-patch: building CPython $(CPYTHON_PATCH_VERSION) from $(CPYTHON_PATCH_TARBALL) into $$dir/install (log: $$dir/build.log)"; \
	echo "$(CPYTHON_PATCH_SHA256)  $(CPYTHON_PATCH_TARBALL)" | sha256sum -c --quiet; \
	tar -xJf $(CPYTHON_PATCH_TARBALL) -C "$$dir"; \
	cd "$$dir/Python-$(CPYTHON_PATCH_VERSION)"; \
	{ ./configure --prefix="$$dir/install" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 \
		&& env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make install; } >"$$dir/build.log" 2>&1 \
		|| { tail -40 "$$dir/build.log"; echo "cpython-patch: FAILED (log: $$dir/build.log)"; exit 1; }; \
	cd "$$dir" && rm -rf "Python-$(CPYTHON_PATCH_VERSION)"; \
	"$$dir/install/bin/python$(basename $(CPYTHON_PATCH_VERSION))" -c "import sys, test.lock_tests, zlib, ctypes; assert sys.version.split()[0] == '$(CPYTHON_PATCH_VERSION)'"; \
	touch "$$dir/built"

## The PyO3 module `_pythread` (python/, not a default member) and CPython's own thread tests
## run against it (CONFORMANCE.md). PYTHON runs them; every other CPython 3.12 / 3.13 found on
## PATH or under `pyenv root`, and CPython 3.13.15 built by cpython-patch, run them again
## (CONFORMANCE_PYTHONS lists them all). One abi3 wheel
## serves every interpreter.
PYTHON ?= python3
CONFORMANCE_PYTHONS ?= $(PYTHON) $(shell for v in 3.12 3.13; do \
	for p in python$$v $$(pyenv root 2>/dev/null)/versions/$$v*/bin/python$$v; do \
	"$$p" -c "import sys, test.lock_tests; assert sys.version_info[:2] == tuple(map(int, '$$v'.split('.')))" \
	>/dev/null 2>&1 && { echo "$$p"; break; }; done; done) $(CPYTHON_PATCH_PYTHON)
# The 3.13.15 build (cpython-patch) when CONFORMANCE_PYTHONS names it.
CONFORMANCE_PATCH_BUILD = $(if $(filter $(CPYTHON_PATCH_PYTHON),$(CONFORMANCE_PYTHONS)),$(CPYTHON_PATCH_STAMP))
# The venv of each interpreter is venv-<major.minor>, the patch build's venv-$(CPYTHON_PATCH_VERSION):
# sets `v` (major.minor) and `venv` for the interpreter `$$py`.
CONFORMANCE_VENV_OF = v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	if [ "$$py" = "$(CPYTHON_PATCH_PYTHON)" ]; then venv=$(CONFORMANCE_DIR)/venv-$(CPYTHON_PATCH_VERSION); \
	else venv=$(CONFORMANCE_DIR)/venv-$$v; fi
PYMODULE_DIR ?= target/python
CONFORMANCE_DIR ?= target/conformance
CONFORMANCE_TIMEOUT ?= 900
# Pinned, from PyPI (as python/pyproject.toml's build-system); installed once per venv.
MATURIN_VERSION ?= 1.16.0
CONFORMANCE_WHEEL = $(CONFORMANCE_DIR)/wheels/pythread_python-0.1.0-cp311-abi3-linux_x86_64.whl

python-module:
	PYO3_BUILD_EXTENSION_MODULE=1 PYO3_PYTHON=$(PYTHON) $(CARGO) build --release -p pythread-python
	mkdir -p $(PYMODULE_DIR)
	cp target/release/lib_pythread.so $(PYMODULE_DIR)/_pythread.abi3.so

## Lints the module only (`--no-deps`): `make clippy` lints the crate itself.
python-clippy:
	PYO3_PYTHON=$(PYTHON) $(CARGO) clippy -p pythread-python --no-deps -- -D warnings

## A venv per interpreter under $(CONFORMANCE_DIR) (made once, maturin installed once: offline
## after the first run), the wheel built once (maturin from the first venv), installed into every
## venv with the activation (`python -m pythread_standin enable`), then the runner under each
## venv's python, bounded by its watchdogs and `timeout`.
conformance-venvs: $(CONFORMANCE_PATCH_BUILD)
	@set -e; for py in $(CONFORMANCE_PYTHONS); do \
		$(CONFORMANCE_VENV_OF); \
		[ -x $$venv/bin/python ] || $$py -m venv $$venv; \
		$$venv/bin/python -m pip --version >/dev/null; \
	done
	@venv=$(CONFORMANCE_DIR)/venv-$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	$$venv/bin/maturin --version 2>/dev/null | grep -qx 'maturin $(MATURIN_VERSION)' \
		|| $$venv/bin/python -m pip install --quiet 'maturin==$(MATURIN_VERSION)'

conformance-wheel: conformance-venvs
	@venv=$$(cd $(CONFORMANCE_DIR) && pwd)/venv-$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	rm -f $(CONFORMANCE_WHEEL); \
	cd python && $$venv/bin/maturin build --release --quiet -i $$venv/bin/python -o ../$(CONFORMANCE_DIR)/wheels
	@test -f $(CONFORMANCE_WHEEL)

## Every interpreter runs even when an earlier one failed; the target fails at the end, naming them.
conformance: python-clippy conformance-wheel
	@set -e; failed=; for py in $(CONFORMANCE_PYTHONS); do \
		$(CONFORMANCE_VENV_OF); \
		rm -f $$venv/lib/python$$v/site-packages/pythread_standin.pth; \
		$$venv/bin/python -m pip install --quiet --no-index --no-deps --force-reinstall $(CONFORMANCE_WHEEL); \
		$$venv/bin/python -m pythread_standin enable; \
		timeout $(CONFORMANCE_TIMEOUT) $$venv/bin/python python/conformance/run.py \
		|| { echo "conformance: FAILED under $$py ($$venv/bin/python, exit $$?)"; failed="$$failed $$py"; }; \
	done; echo "conformance: ran under $(CONFORMANCE_PYTHONS)"; \
	[ -z "$$failed" ] || { echo "conformance: FAILED under$$failed"; exit 1; }

## Process lifecycle (issue 18): python/conformance/lifecycle.py's checks of the module at
## interpreter exit (daemon threads running; pthread_exit inside a guarded call) and at fork,
## under PYTHON and again under each of Python 3.12 and 3.13 that is installed (found as
## CONFORMANCE_PYTHONS finds them) and under the 3.13.15 build (cpython-patch). Each check runs child interpreters, bounded by the script's own timeouts
## and by `timeout` around each run. LIFECYCLE_CHECKS selects checks by name prefix (empty: all).
LIFECYCLE_PYTHONS ?= $(shell for v in 3.12 3.13; do for p in python$$v $$(pyenv root 2>/dev/null)/versions/$$v*/bin/python$$v; do \
	"$$p" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$$v'" >/dev/null 2>&1 \
	&& { echo "$$p"; break; }; done; done) $(CPYTHON_PATCH_PYTHON)
LIFECYCLE_PATCH_BUILD = $(if $(filter $(CPYTHON_PATCH_PYTHON),$(LIFECYCLE_PYTHONS)),$(CPYTHON_PATCH_STAMP))
LIFECYCLE_TIMEOUT ?= 300
LIFECYCLE_CHECKS ?=
.PHONY: lifecycle
conformance: lifecycle
lifecycle: python-module $(LIFECYCLE_PATCH_BUILD)
	@set -e; seen=; for p in $(PYTHON) $(LIFECYCLE_PYTHONS); do \
		v=$$("$$p" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'); \
		case " $$seen " in *" $$v "*) continue;; esac; seen="$$seen $$v"; \
		timeout $(LIFECYCLE_TIMEOUT) "$$p" python/conformance/lifecycle.py --path $(PYMODULE_DIR) $(LIFECYCLE_CHECKS) \
		|| { echo "lifecycle: FAILED under $$p (exit $$?)"; exit 1; }; \
	done

## Python-level costs of the module against CPython's own `_thread` (BENCHMARKS.md), in each
## conformance venv: instructions per operation under callgrind (needs valgrind; one interpreter
## per row and side), then wall-clock time (best of 7, interleaved), then `_local` at scale
## (python/bench_locals.py: 80,000 locals made and touched). Never part of `make test`.
bench-python: conformance-wheel
	@set -e; for py in $(CONFORMANCE_PYTHONS); do \
		$(CONFORMANCE_VENV_OF); \
		rm -f $$venv/lib/python$$v/site-packages/pythread_standin.pth; \
		$$venv/bin/python -m pip install --quiet --no-index --no-deps --force-reinstall $(CONFORMANCE_WHEEL); \
		$$venv/bin/python python/bench.py; \
		$$venv/bin/python python/bench_locals.py; \
	done


## RustPython 0.5.0 with its `_thread` rebuilt on the crate (rustpython/, issue 20): the binary
## target/release/pythread-rustpython; the idents check (idents.py: `sys._current_frames()`
## finds every thread by its ident, and every ident Python sees is RustPython's own; printed for
## RustPython's own `_thread`, required of the crate's); then two suites on it twice, with
## RustPython's own `_thread` and with the crate's, each class in its own process under
## `timeout` (CONFORMANCE.md): CPython's thread tests (the installed CPython's Lib/test), one row
## per class, and RustPython 0.5.0's own thread tests (RUSTPYTHON_TESTS, its Lib/test with its
## own markers), one row per module. Not part of `make test`: a cold release build takes about
## 8 minutes and the member has about 300 dependencies. Fails when a test fails on the crate's
## `_thread` but not on RustPython's own.
.PHONY: rustpython rustpython-bench
CPYTHON_LIB ?= $(shell $(PYTHON) -c 'import os, test; print(os.path.dirname(os.path.dirname(test.__file__)))')
RUSTPYTHON_CLASS_TIMEOUT ?= 600
RUSTPYTHON_TEST_TIMEOUT ?= 90
RUSTPYTHON_BIN ?= target/release/pythread-rustpython
## RustPython 0.5.0's Lib/test (its README says where it comes from), beside the repository.
RUSTPYTHON_TESTS ?= ../shared/rustpython-0.5.0-tests
RUSTPYTHON_OWN_MODULES = test.test_thread test.test_threading test.test_threadsignals \
	test.test_threading_local test.test_threadedtempfile test.test_queue

rustpython:
	@test -d $(RUSTPYTHON_TESTS)/test || { echo "make rustpython: RustPython's tests not found:" \
		"RUSTPYTHON_TESTS=$(RUSTPYTHON_TESTS) has no test/ (set RUSTPYTHON_TESTS)" >&2; exit 1; }
	$(CARGO) build --release -p pythread-rustpython
	-PYTHREAD_RUSTPYTHON_OWN=1 timeout 120 $(RUSTPYTHON_BIN) rustpython/conformance/idents.py
	PYTHREAD_RUSTPYTHON_OWN=0 timeout 120 $(RUSTPYTHON_BIN) rustpython/conformance/idents.py
	$(PYTHON) rustpython/conformance/run.py --binary $(RUSTPYTHON_BIN) --lib $(CPYTHON_LIB) \
		--timeout $(RUSTPYTHON_CLASS_TIMEOUT) --test-timeout $(RUSTPYTHON_TEST_TIMEOUT)
	$(PYTHON) rustpython/conformance/run.py --binary $(RUSTPYTHON_BIN) \
		--lib $(abspath $(RUSTPYTHON_TESTS)) --by module --out target/rustpython-own-tests \
		--timeout $(RUSTPYTHON_CLASS_TIMEOUT) --test-timeout $(RUSTPYTHON_TEST_TIMEOUT) \
		$(RUSTPYTHON_OWN_MODULES)
	timeout 20 $(RUSTPYTHON_BIN) rustpython/conformance/untimed.py
	timeout 300 $(RUSTPYTHON_BIN) rustpython/conformance/fork_stress.py
	timeout 60 $(RUSTPYTHON_BIN) rustpython/conformance/fork_local.py

## Python-level speed on RustPython, its own `_thread` and the crate's side by side (BENCHMARKS.md).
rustpython-bench:
	$(CARGO) build --release -p pythread-rustpython
	$(PYTHON) rustpython/bench/compare.py --binary $(RUSTPYTHON_BIN)

## User-space instructions per operation on RustPython, both `_thread`s (callgrind; deterministic,
## unlike the timings under load; see BENCHMARKS.md).
RUSTPYTHON_INSTR_N ?= 20000
.PHONY: rustpython-instructions
rustpython-instructions:
	$(CARGO) build --release -p pythread-rustpython
	@for row in acquire_release with_lock rlock; do for own in 1 0; do \
		count() { PYTHREAD_RUSTPYTHON_OWN=$$own valgrind --tool=callgrind --callgrind-out-file=/dev/null \
			$(RUSTPYTHON_BIN) rustpython/bench/instructions.py $$row $$1 2>&1 | sed -n 's/.*Collected : //p'; }; \
		base=$$(count 0); full=$$(count $(RUSTPYTHON_INSTR_N)); \
		echo "$$row $$( [ $$own = 1 ] && echo own || echo crate ): $$(( (full - base) / $(RUSTPYTHON_INSTR_N) )) instructions per operation"; \
	done; done
