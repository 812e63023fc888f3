// The single translation unit that provides main() for a CAF test binary.
#include "caf/test/unit_test_impl.hpp"
