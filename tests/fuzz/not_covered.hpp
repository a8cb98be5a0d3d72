// TYTO_NOT_COVERED marks harness code that libFuzzer should not count as coverage: checks and
// oracles whose loops would otherwise fill the corpus with inputs new only to them. Only clang
// knows the attribute; fuzz builds are clang builds, and the corpus replayers need none.
#pragma once

#if defined(__clang__)
#define TYTO_NOT_COVERED __attribute__((no_sanitize("coverage")))
#else
#define TYTO_NOT_COVERED
#endif
