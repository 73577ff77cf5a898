// Include this instead of <immintrin.h> in the *_avx2/_avx512/_avx512vnni files.
//
// GCC 12 warns "'__Y' is used uninitialized" from inside its own AVX-512
// intrinsic headers once they are inlined (GCC bug 105593, fixed in GCC 13):
// the intrinsics start from _mm512_undefined_*() on purpose. The warning's
// location is the intrinsic header, so it is silenced for those lines only,
// by disabling it before the header is first included.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
