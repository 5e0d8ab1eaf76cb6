/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "test-util.h"

TEST(placeholder) {
}

DEFINE_TEST_MAIN
