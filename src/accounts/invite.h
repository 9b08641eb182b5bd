/*
 * accounts/invite: the teacher-invitation lifecycle as pure functions, no
 * I/O. The store reads an invitation's stored status and asks here whether
 * an action is allowed, and if not, why (accounts/invite.c has the diagram).
 */
#ifndef ROSTER_ACCT_INVITE_H
#define ROSTER_ACCT_INVITE_H

#include <stdbool.h>

/* The status column of teacher_invitations. */
enum acct_invite_state {
	ACCT_INV_PENDING,
	ACCT_INV_ACCEPTED,
	ACCT_INV_REVOKED,
	ACCT_INV_EXPIRED, /* stored once another invitation for the email needed the slot */
	ACCT_INV_BAD,     /* a value this binary does not know */
};

/* What a caller wants to do with an invitation. */
enum acct_invite_action {
	ACCT_INV_ACCEPT, /* by the account whose email it names */
	ACCT_INV_RESEND, /* new token and expiry */
	ACCT_INV_REVOKE,
};

/* Why an action is refused; 0: allowed. Values mirror enum store_invite_why. */
enum acct_invite_why {
	ACCT_INVITE_OK = 0,
	ACCT_INVITE_UNKNOWN, /* no such invitation, or a state this binary does not know */
	ACCT_INVITE_EXPIRED,
	ACCT_INVITE_USED,
	ACCT_INVITE_REVOKED,
	ACCT_INVITE_EMAIL_MISMATCH,
};

/* The stored status text as a state; ACCT_INV_BAD for NULL or anything else. */
enum acct_invite_state acct_invite_state_parse(const char *status);

/*
 * Whether `action` is allowed on an invitation stored as `state`, `expired`
 * when its expiry has passed, `email_matches` when the accepting account's
 * email_key is the invitation's (ignored but for ACCT_INV_ACCEPT).
 */
enum acct_invite_why acct_invite_check(
    enum acct_invite_action action, enum acct_invite_state state, bool expired, bool email_matches);

#endif
