/*
 * `roster import django`: a Django database's users, profiles, DRF tokens and
 * teacher invitations into the configured roster database, repeatable, every
 * source row accounted for in a report (docs/cli.md, docs/migrating-from-django.md).
 */
#ifndef ROSTER_IMPORT_H
#define ROSTER_IMPORT_H

struct config;

/* The command; returns its exit status (enum cli_exit, docs/cli.md). */
int import_django(const struct config *cfg);

#endif
