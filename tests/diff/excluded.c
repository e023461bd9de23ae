/* Encodings the differential tests cannot run natively in a user-mode
 * process, each with the unit test that covers it instead. The coverage
 * gate (coverage.c) fails if an implemented encoding has neither a form
 * nor a line here, if a line names an encoding that is not implemented or
 * that a form covers, and emu-diff.sh checks that the unit test exists.
 * Nothing else may be excluded. */
#include <stddef.h>

#include "diff.h"

static const struct diff_exclusion exclusions[] = {
	{ NULL, NULL, NULL },
};

const struct diff_exclusion *diff_exclusions(unsigned *n)
{
	*n = sizeof(exclusions) / sizeof(exclusions[0]) - 1;
	return exclusions;
}
