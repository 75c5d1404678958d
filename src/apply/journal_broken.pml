/*
 * journal_broken.pml: journal.pml with the deliberate flaw BROKEN: resolution drops a Journaled
 * intent as soon as no task is listed for it, without waiting out the fresh window and without
 * proof that the history still covers the intent. spin must find a violation here
 * (scripts/model-check.sh fails if it does not): the POST of the dropped intent is still in
 * flight or its task is fresh, and a second reinstall follows.
 */
#define BROKEN
#include "journal.pml"
