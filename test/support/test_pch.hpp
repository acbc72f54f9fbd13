// The precompiled header of the test objects (the Makefile's TEST_PCH):
// GoogleTest and the standard headers most test files include, parsed once
// per build instead of once per test file. The Makefile force-includes it
// (-include) before each test file, so only headers that do not depend on
// what a file defines first belong here: no project header (a test file
// may declare names of its own in fsrv::test), no header that reads a
// configuration macro (xxhash.h's XXH_INLINE_ALL, for one). Test files
// still include what they use, so each also compiles without it. An include
// guard, not #pragma once: g++ 12 warns of "#pragma once in main file" when
// it compiles the header itself (an error with -Werror).
#ifndef FSRV_TEST_SUPPORT_TEST_PCH_HPP
#define FSRV_TEST_SUPPORT_TEST_PCH_HPP

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#endif  // FSRV_TEST_SUPPORT_TEST_PCH_HPP
