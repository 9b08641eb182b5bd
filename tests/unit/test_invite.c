/*
 * Unit tests for src/accounts/invite.c: which action each stored state
 * allows, and why not, as a table over every (state, expired, email) input.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>

#include "accounts/invite.h"

Test(acct_invite, parses_every_stored_status)
{
	cr_assert_eq(acct_invite_state_parse("pending"), ACCT_INV_PENDING);
	cr_assert_eq(acct_invite_state_parse("accepted"), ACCT_INV_ACCEPTED);
	cr_assert_eq(acct_invite_state_parse("revoked"), ACCT_INV_REVOKED);
	cr_assert_eq(acct_invite_state_parse("expired"), ACCT_INV_EXPIRED);
	cr_assert_eq(acct_invite_state_parse("Pending"), ACCT_INV_BAD);
	cr_assert_eq(acct_invite_state_parse(""), ACCT_INV_BAD);
	cr_assert_eq(acct_invite_state_parse(NULL), ACCT_INV_BAD);
}

struct row {
	enum acct_invite_state state;
	bool expired;
	bool email_matches;
	enum acct_invite_why accept, resend, revoke;
};

/* Every input; the three answers per row. */
static const struct row table[] = {
    {ACCT_INV_PENDING, false, true, ACCT_INVITE_OK, ACCT_INVITE_OK, ACCT_INVITE_OK},
    {ACCT_INV_PENDING, false, false, ACCT_INVITE_EMAIL_MISMATCH, ACCT_INVITE_OK, ACCT_INVITE_OK},
    {ACCT_INV_PENDING, true, true, ACCT_INVITE_EXPIRED, ACCT_INVITE_OK, ACCT_INVITE_EXPIRED},
    {ACCT_INV_PENDING, true, false, ACCT_INVITE_EXPIRED, ACCT_INVITE_OK, ACCT_INVITE_EXPIRED},
    {ACCT_INV_EXPIRED, false, true, ACCT_INVITE_EXPIRED, ACCT_INVITE_OK, ACCT_INVITE_EXPIRED},
    {ACCT_INV_EXPIRED, true, false, ACCT_INVITE_EXPIRED, ACCT_INVITE_OK, ACCT_INVITE_EXPIRED},
    {ACCT_INV_ACCEPTED, false, true, ACCT_INVITE_USED, ACCT_INVITE_USED, ACCT_INVITE_USED},
    {ACCT_INV_ACCEPTED, true, false, ACCT_INVITE_USED, ACCT_INVITE_USED, ACCT_INVITE_USED},
    {ACCT_INV_REVOKED, false, true, ACCT_INVITE_REVOKED, ACCT_INVITE_REVOKED, ACCT_INVITE_REVOKED},
    {ACCT_INV_REVOKED, true, false, ACCT_INVITE_REVOKED, ACCT_INVITE_REVOKED, ACCT_INVITE_REVOKED},
    {ACCT_INV_BAD, false, true, ACCT_INVITE_UNKNOWN, ACCT_INVITE_UNKNOWN, ACCT_INVITE_UNKNOWN},
};

Test(acct_invite, table_of_every_state_and_action)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct row *r = &table[i];

		cr_expect_eq(
		    acct_invite_check(ACCT_INV_ACCEPT, r->state, r->expired, r->email_matches),
		    r->accept, "row %zu: accept", i);
		cr_expect_eq(
		    acct_invite_check(ACCT_INV_RESEND, r->state, r->expired, r->email_matches),
		    r->resend, "row %zu: resend", i);
		cr_expect_eq(
		    acct_invite_check(ACCT_INV_REVOKE, r->state, r->expired, r->email_matches),
		    r->revoke, "row %zu: revoke", i);
	}
}

Test(acct_invite, accepted_is_final_whatever_else_holds)
{
	for (int expired = 0; expired < 2; expired++)
		for (int match = 0; match < 2; match++)
			cr_assert_eq(
			    acct_invite_check(ACCT_INV_ACCEPT, ACCT_INV_ACCEPTED, expired, match),
			    ACCT_INVITE_USED);
}

Test(acct_invite, expiry_is_checked_before_the_email)
{
	/* Someone else's expired invitation says "expired", not "not yours". */
	cr_assert_eq(
	    acct_invite_check(ACCT_INV_ACCEPT, ACCT_INV_PENDING, true, false), ACCT_INVITE_EXPIRED);
}
