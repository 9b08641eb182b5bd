/*
 * Teacher invitations: which action each state allows. Pure; the store makes
 * the transitions, each one conditional UPDATE checked by affected rows.
 *
 *   1. An invitation is used at most once: accepted is final.
 *   2. Revoked is final; only a pending, unexpired invitation can be revoked.
 *   3. Expiry is computed: a pending invitation past expires_at reads as
 *      expired; the stored status becomes 'expired' only when another
 *      invitation for the same email needs the pending slot.
 *   4. At most one pending invitation per email (the partial unique index).
 *   5. Only the account whose email_key the invitation names may accept it.
 *
 *             store_invite_create
 *                     |
 *                     v
 *    +----------> pending ---- store_invite_accept --------> accepted
 *    |             |   |       (or store_user_create with
 *    |             |   |        an invitation_hash)
 *    |             |   +------ store_invite_revoke --------> revoked
 *    |             |
 *    |             +---- expires_at passes (or, stored, store_invite_create
 *    |             |     for the same email) ----> expired
 *    |                                                  |
 *    +---- store_invite_resend (pending or expired) ----+
 */
#include "accounts/invite.h"

#include <stddef.h>
#include <string.h>

enum acct_invite_state
acct_invite_state_parse(const char *status)
{
	static const char *const names[] = {
	    [ACCT_INV_PENDING] = "pending",
	    [ACCT_INV_ACCEPTED] = "accepted",
	    [ACCT_INV_REVOKED] = "revoked",
	    [ACCT_INV_EXPIRED] = "expired",
	};

	for (size_t i = 0; status != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(status, names[i]) == 0)
			return (enum acct_invite_state)i;
	return ACCT_INV_BAD;
}

enum acct_invite_why
acct_invite_check(
    enum acct_invite_action action, enum acct_invite_state state, bool expired, bool email_matches)
{
	switch (state) {
	case ACCT_INV_ACCEPTED:
		return ACCT_INVITE_USED; /* 1 */
	case ACCT_INV_REVOKED:
		return ACCT_INVITE_REVOKED; /* 2 */
	case ACCT_INV_EXPIRED:
		expired = true; /* 3 */
		break;
	case ACCT_INV_PENDING:
		break;
	default:
		return ACCT_INVITE_UNKNOWN;
	}
	switch (action) {
	case ACCT_INV_RESEND:
		return ACCT_INVITE_OK; /* pending or expired */
	case ACCT_INV_REVOKE:
		return expired ? ACCT_INVITE_EXPIRED : ACCT_INVITE_OK;
	case ACCT_INV_ACCEPT:
		if (expired)
			return ACCT_INVITE_EXPIRED;
		return email_matches ? ACCT_INVITE_OK : ACCT_INVITE_EMAIL_MISMATCH; /* 5 */
	}
	return ACCT_INVITE_UNKNOWN;
}
