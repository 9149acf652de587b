# The two set-up commands of the README:
#   make demo   builds (Release) and runs the demo tool on the wiki's workloads, with timings
#   make test   checks the layering rule (scripts/check-layers), then builds and runs the test
#               suite: normal build, ASan+UBSan build, TSan stress tests, the API reference,
#               the codec fuzzer for a fixed number of runs
# and: make docs (API reference, build/docs/html), make package (.deb files, build/package)
# Both install the Debian packages they need when missing (scripts/deps.sh).
JOBS ?= $(shell nproc)
.PHONY: demo test build release bench report clang chaos format clean docs package

demo:
	@scripts/deps.sh build
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target mpp-demo
	build/release/tools/mpp-demo all

test:
	@scripts/test.sh

build:
	@scripts/deps.sh build
	cmake --preset dev && cmake --build --preset dev -j $(JOBS)

release:
	@scripts/deps.sh build
	cmake --preset release && cmake --build --preset release -j $(JOBS)

clang:
	@scripts/deps.sh test
	cmake --preset clang && cmake --build --preset clang -j $(JOBS)

bench:
	@scripts/deps.sh bench
	cmake --preset release && cmake --build --preset release -j $(JOBS)
	@echo "benchmarks are in build/release/bench/; bench/report runs them all"

report: bench
	bench/report

# The API reference site from the headers (doxygen): build/docs/html/index.html.
docs:
	@scripts/deps.sh docs
	scripts/docs.sh build/docs

# The .deb packages (shared Release libraries under /usr; cmake/MppPackage.cmake):
# build/package/*.deb
package:
	@scripts/deps.sh package
	cmake --preset package >/dev/null
	cmake --build --preset package -j $(JOBS) --target package

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp')

clean:
	rm -rf build

# The chaos harness's long run (tests/chaos, docs/chaos.md): every fail point x role over several
# seeded rounds, random SIGKILLs, and the load run. Its output is kept in tests/chaos/RESULTS.md.
chaos:
	@scripts/deps.sh build
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS) --target mpp_chaos
	@{ echo '# mpp_chaos long run (`make chaos`), last output'; echo; echo '```'; \
	   build/dev/tests/chaos/mpp_chaos --long 2>&1; echo "exit status $$?"; echo '```'; } \
	   | tee tests/chaos/RESULTS.md
	@grep -q '^RESULT: PASS' tests/chaos/RESULTS.md
