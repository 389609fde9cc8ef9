/* suite.h: each unit-test file defines its Check suite; main() in
 * check_main.c runs it, the same way for every module. */
#ifndef FORQ_TEST_SUITE_H
#define FORQ_TEST_SUITE_H

#include <check.h>

Suite *make_suite(void);

#endif
