# Thin wrapper over meson/ninja: the README's two commands and a few more.
BUILD     ?= build
SAN_BUILD ?= build-san
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = register normalize auth django router mail tmpl
ROSTER_DB ?= sqlite:var/roster.db
export ROSTER_DB

SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all deps build build-san build-fuzz run test test-unit test-http fuzz format check-format clean bench check-memory

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-san: deps $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)

# Builds, migrates the default SQLite database under var/, serves on 127.0.0.1:8000.
run: build
	$(BUILD)/roster migrate
	exec $(BUILD)/roster serve

# Every test: the layering check, the OpenAPI lint (docs/openapi.yaml, @redocly/cli from
# package-lock.json), unit, corpus replay and black-box (SQLite and a throwaway
# PostgreSQL, nginx) on the development build and under ASan+UBSan, a valgrind
# scenario, then each libFuzzer target for a short bounded time.
test: build build-san build-fuzz
	scripts/check-layers
	scripts/check-format
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	    node_modules/.bin/redocly lint --format=summary docs/openapi.yaml
	meson test -C $(BUILD) --print-errorlogs --num-processes 1
	$(SAN_ENV) meson test -C $(SAN_BUILD) --print-errorlogs --num-processes 1
	scripts/check-memory $(BUILD)/roster
	scripts/fuzz $(FUZZ_BUILD) 10 $(FUZZ_TARGETS)

build-fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

# Each libFuzzer target for FUZZ_SECONDS (default 60).
fuzz: build-fuzz
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test-unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

test-http: build
	meson test -C $(BUILD) --suite http --print-errorlogs

# roster under valgrind (migrate, user create, serve with a short scenario, SIGTERM)
# on SQLite; fails on any memory error or definite/indirect leak. About 10 seconds.
check-format:
	scripts/check-format

check-memory: build
	scripts/check-memory $(BUILD)/roster

# Release build (no sanitizers), wrk and nginx, then bench/run: ratios against an
# nginx reference measured in the same run (README "Benchmarks"). Under 3 minutes.
BENCH_BUILD ?= build-release

bench:
	@scripts/install-deps --bench
	@test -f $(BENCH_BUILD)/build.ninja || meson setup $(BENCH_BUILD) --buildtype=release
	ninja -C $(BENCH_BUILD)
	bench/run --build $(BENCH_BUILD)
	bench/import-django --build $(BENCH_BUILD)

# Rewrites every C file with the pinned .clang-format; `make test` checks it (scripts/check-format).
format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD)
