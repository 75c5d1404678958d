/*
 * journal.pml: the intent journal of `ovhform apply` and its resolution, for ONE server
 * (issue 9, "Crash safety"). This model is the specification of the journal code in src/apply/:
 * change one, change the other. scripts/model-check.sh checks it with spin (scripts/test.sh runs
 * that, so CI does); docs/ARCHITECTURE.md "Crash safety model" says what it covers and what not.
 *
 * The world
 *   j_*, rec, rec_task   the state store (journal entry, install record): survives crashes. Every
 *                        write is one `atomic` step (the store writes by rename: all or nothing).
 *   lock_owner           the store's file lock; the kernel releases it when its holder dies.
 *   proctype Run         one `ovhform apply`. Two race for the lock; each is started again by its
 *                        operator after a crash or after losing the lock (ATTEMPTS starts each).
 *   CRASH                SIGKILL before any step of a run, also while it waits (MAXCRASH in all):
 *                        memory is lost, the kernel releases the lock and closes the sockets (an
 *                        answer still on its way is lost), a POST already sent stays sent.
 *   proctype Api         OVH: handles each POST, maybe long after the client gave up or died;
 *                        starts the task, or refuses (4xx), or answers TaskAlreadyExists; loses
 *                        answers; ends tasks (done or failed); purges ended tasks, oldest first.
 *   proctype Clock       the API clock, as ages rather than dates: j_age = now - the intent's
 *                        `created`, t_age[t] = now - task t's start, both saturating past every
 *                        threshold, so time is unbounded and the state space finite.
 *   task slot 0          an older reinstall, ended, that Api may purge from the first step on (a
 *                        server reinstalled long ago, or never): the witness that the history
 *                        still reaches back before an intent.
 *
 * Time (ticks of the API clock)
 *   FW    fresh window: for up to FW after its start a task may be missing from the task list,
 *         and its own GET may answer 404.
 *   LAG   the POST is sent only while now - created < LAG (else it is not sent at all), and the
 *         API starts the task (or refuses it) no later than created + LAG.
 *   WAIT  = LAG + FW: what resolution waits out since `created` before concluding anything from
 *         a task's absence.
 *   A decision compares the API time read BEFORE the request it is based on (a0).
 *   "A task started at or after the intent" is exact here (t_epoch): `created` is a lower bound of
 *   the API time at the journal write.
 *
 * Protocol step -> model (labels in proctype Run; Api's side in HANDLE_POST)
 *   lock; a second run fails         `lock:` takes the lock or fails, ending the attempt
 *   the plan                         `plan:` (before the lock, as a saved plan is)
 *   resolve every intent on start    `act:` the loop looks at the journal first, every time
 *   and before any reinstall                round; a new intent only when it holds none (P6)
 *   never POST with an intent        `act:` new intent only if j_state == J_NONE and no record,
 *                                    the record re-read under the lock (see STALE_PLAN)
 *   (1) intent Journaled{created}    `journal:`
 *   (2) POST /reinstall, once        `post:` sent at most once per intent; never by resolution
 *       answer, lost answer,         `answer:` an answer, a lost answer, or the client's timeout
 *       4xx, TaskAlreadyExists       (unknown: stays Journaled); Api: HANDLE_POST
 *   (3) rewrite as Posted{task}      `posted:` (on the answer, or TaskAlreadyExists' task)
 *   (4) track the task               `track:` one GET: status, or 404 (fresh or purged)
 *   (5) done: record, then drop      `record:` then `drop_done:`
 *       failed: drop, no record      `drop_failed:`
 *       refused (4xx): drop          `drop_refused:`
 *   resolution of Journaled          `resolve:` one GET task?function=reinstallServer, then
 *     a task started >= created        `attach:` rewrite as Posted, then tracked as (4)
 *     none, window not passed          wait: look again later, no POST
 *     none, window passed, an older    `drop_proved:`
 *       task still listed
 *     otherwise                        `unresolve:` Unresolved
 *   resolution of Posted{task}       `track:` as (4); and two rules the protocol left open:
 *                                    the store already holds this task's record (crash between
 *                                    record and drop) -> `drop_recorded:`; 404 once the window
 *                                    has passed = purged, its end unknown -> `unresolve_purged:`
 *   Unresolved                       nothing more for the server, ever (no person in the model)
 *
 * Properties
 *   P1 at most one reinstall task per intent                              assert, Api
 *   P2 per approved server: no POST reaches the API while a task ovhform started runs, and a
 *      task starts only if every earlier one ovhform started failed (never a second install
 *      after a successful one; never two at once, whatever TaskAlreadyExists does)  assert, Api
 *   P3 no task starts for an intent that is no longer in the journal      assert, Api
 *   P4 an intent is never silently dropped: only when its task ended (recorded or failed), or
 *      no task was started for it and no POST for it is still in flight   assert, every drop
 *   P5 an intent is attached to, and its record names, its own task only  assert, Run
 *   P6 a new intent (hence a POST) only while the journal holds none      assert, `journal:`
 *   P7 Unresolved only when the history was purged (the older task gone)  assert, unresolve*
 *   P8 an Unresolved intent stays Unresolved                              LTL unresolved_is_final
 *   and no invalid end state (every process ends, or idles at an `end` label).
 *
 * Variants (cpp defines). scripts/model-check.sh expects the default to verify, each other to fail.
 *   (none)                  the protocol as above.
 *   BROKEN                  resolution drops a Journaled intent as soon as no task is listed
 *                           (journal_broken.pml).
 *   LAG_UNBOUNDED           the window is waited out from `created` only (WAIT = FW), nothing
 *                           bounds the time from `created` to the task's start.
 *   STALE_PLAN              a new intent when the plan (read before the lock) wanted one and the
 *                           journal is empty, without reading the record again under the lock.
 *   PURGED_MEANS_ENDED      a Posted task answering 404 after the window is taken as ended: drop.
 *   CLOCK_AFTER_ANSWER      decisions compare the API time read after the answer came back.
 *   CREATED_ESTIMATE        `created` is the estimated API time, not a lower bound: a task
 *                           started within the estimate's error compares as older than its intent.
 *
 * Assumptions (not checked): store writes are atomic and durable; the lock is exclusive; only
 * ended tasks are purged, oldest first; the API starts a task (or refuses) within LAG of
 * `created` when the POST was sent before that; no one but ovhform starts tasks on the server
 * (hence TaskAlreadyExists, though modelled, is never answered to the verified protocol: pan
 * lists that branch of Api as unreached).
 */

/* ---- sizes and constants (FW, LAG, ATTEMPTS, MAXCRASH: override with spin -D...) ---- */
#ifndef FW
#define FW        2
#endif
#ifndef LAG
#define LAG       1
#endif
#ifdef LAG_UNBOUNDED
#define WAIT      FW
#else
#define WAIT      (LAG + FW)
#endif
#define NRACE     2     /* runs racing for the lock */
#ifndef ATTEMPTS
#define ATTEMPTS  3     /* starts of each run */
#endif
#ifndef MAXCRASH
#define MAXCRASH  3     /* SIGKILLs in all */
#endif
#define MAXI      2     /* intents over the whole history */
#define NT        3     /* task slots: 0 = older task, 1..2 = tasks started by POSTs */

#define J_NONE       0
#define J_JOURNALED  1
#define J_POSTED     2
#define J_UNRESOLVED 3

#define T_NONE 0
#define T_RUN  1        /* init, todo, doing */
#define T_DONE 2
#define T_FAIL 3        /* customerError, ovhError, cancelled */
#define S_404  4        /* what the run saw: 404 */
#define S_REC  5        /* what the run saw: the store holds the record of this task */

#define A_NONE    0
#define A_OK      1
#define A_REFUSED 2
#define A_EXISTS  3
#define A_LOST    4

/* ---- the state store (persistent) ---- */
byte j_state = J_NONE;  /* the journal entry of the server: at most one intent */
byte j_id;              /* which intent (1..MAXI) */
byte j_task;            /* Posted{task} */
byte j_age;             /* API now - the intent's `created`, saturating at WAIT */
bit  rec;               /* the install record of the desired spec */
byte rec_task;          /* its task */
byte lock_owner;        /* 0 = free, else run + 1 */

/* ---- the API ---- */
byte nt = 1;            /* task slots used */
byte t_status[NT];
byte t_age[NT];         /* API now - start, saturating at FW */
bit  t_purged[NT];
byte t_epoch[NT];       /* intents made before the task started: started >= intent i's created
                           iff t_epoch >= i (same instant counts as after, as in ">=") */
bit  req_pend[MAXI + 1];     /* a POST for intent i sent, not handled yet */
byte req_age[MAXI + 1];      /* the intent's age while its POST is on its way */
byte req_listener[MAXI + 1]; /* run + 1 still waiting for the answer, 0 = nobody */
byte ans_kind[NRACE];
byte ans_task[NRACE];

byte ni;                     /* intents made so far (t_epoch's unit) */

/* ---- ghosts (for the properties only; no process decides on them) ---- */
byte tasks_of[MAXI + 1];     /* tasks started by the POST of intent i */
byte task_of[MAXI + 1];      /* the last of them */
byte t_intent[NT];           /* which intent's POST started task t (0: not ovhform's) */
bit  history_gap;            /* the older task was purged */
byte crashes;               /* SIGKILLs so far */

#define ENDED(t) (t_status[t] == T_DONE || t_status[t] == T_FAIL)
/* P4: dropping the journal's intent loses nothing */
#define DROP_OK (!req_pend[j_id] && (tasks_of[j_id] == 0 || ENDED(task_of[j_id])))

ltl unresolved_is_final { [] ((j_state == J_UNRESOLVED) -> [] (j_state == J_UNRESOLVED)) }

/* ---- the API clock ---- */
#define FRESH(t) (t < nt && t_age[t] < FW)
#define TICK_USEFUL ((j_state == J_JOURNALED || j_state == J_POSTED) && j_age < WAIT \
                     || FRESH(1) || FRESH(2))
#ifdef LAG_UNBOUNDED
#define TICK_OK TICK_USEFUL
#else
/* the API handles a POST no later than LAG after its intent's `created` */
#define TICK_OK (TICK_USEFUL && !(req_pend[1] && req_age[1] >= LAG) \
                 && !(req_pend[2] && req_age[2] >= LAG))
#endif
#define AGE_TASK(t) if :: FRESH(t) -> t_age[t]++ :: else -> skip fi
#define AGE_REQ(i)  if :: req_pend[i] && req_age[i] < WAIT -> req_age[i]++ :: else -> skip fi

active proctype Clock()
{
end:
  do
  :: d_step {
       TICK_OK ->
       if
       :: (j_state == J_JOURNALED || j_state == J_POSTED) && j_age < WAIT -> j_age++
       :: else -> skip
       fi;
       AGE_TASK(1); AGE_TASK(2);
       AGE_REQ(1); AGE_REQ(2)
     }
  od
}

/* ---- OVH ---- */
/* a task's start, against the intents' `created`: it started at or after intent i iff
   t_epoch >= i. CREATED_ESTIMATE: a task started in the tick its intent was made compares as
   older (its startDate is below the estimated `created`) */
#ifdef CREATED_ESTIMATE
#define EPOCH (ni - ((j_state != J_NONE && j_id == ni && j_age == 0) -> 1 : 0))
#else
#define EPOCH ni
#endif
/* POST /reinstall for intent i, handled by the API (the sender may have given up or died) */
#define HANDLE_POST(i) \
  atomic { \
    req_pend[i] -> \
    assert(!(nt > 1 && t_status[1] == T_RUN) && !(nt > 2 && t_status[2] == T_RUN)); /* P2 */ \
    if \
    :: t_status[1] == T_RUN -> k = 1; a = A_EXISTS \
    :: t_status[2] == T_RUN -> k = 2; a = A_EXISTS \
    :: else -> \
       if \
       :: nt < NT -> \
          assert(tasks_of[i] == 0); /* P1 */ \
          assert(!(nt > 1 && t_status[1] == T_DONE)); /* P2 (nt <= 2 here: slot 1 at most) */ \
          assert(j_state != J_NONE && j_id == i); /* P3 */ \
          k = nt; nt++; \
          t_status[k] = T_RUN; t_age[k] = 0; t_epoch[k] = EPOCH; t_intent[k] = i; \
          tasks_of[i]++; task_of[i] = k; a = A_OK \
       :: k = 0; a = A_REFUSED /* validation 4xx: no task */ \
       fi \
    fi; \
    if \
    :: req_listener[i] != 0 -> \
       if \
       :: ans_task[req_listener[i] - 1] = k; ans_kind[req_listener[i] - 1] = a \
       :: ans_kind[req_listener[i] - 1] = A_LOST /* timeout, reset after sending */ \
       fi \
    :: else -> skip /* nobody listens any more: the answer is lost */ \
    fi; \
    req_pend[i] = 0; req_listener[i] = 0; req_age[i] = 0; k = 0; a = A_NONE \
  }

#define FINISH(t) \
  atomic { t_status[t] == T_RUN -> if :: t_status[t] = T_DONE :: t_status[t] = T_FAIL fi }

active proctype Api()
{
  byte k, a;
end:
  do
  :: HANDLE_POST(1)
  :: HANDLE_POST(2)
  :: FINISH(1)
  :: FINISH(2)
  /* purge: ended tasks, oldest first */
  :: atomic { !t_purged[0] && ENDED(0) -> t_purged[0] = 1; history_gap = 1 }
  :: atomic { 1 < nt && t_purged[0] && !t_purged[1] && ENDED(1) -> t_purged[1] = 1 }
  :: atomic { 2 < nt && t_purged[1] && !t_purged[2] && ENDED(2) -> t_purged[2] = 1 }
  od
}

/* ---- one `ovhform apply` ---- */
/* Every step is one `atomic`: one action seen outside the process (a journal or record write, a
   request, an answer) with the local bookkeeping around it; CRASH is an option before each. A
   request's answer and the decision taken on it are separate steps: the world (tasks, the clock)
   moves in between, as it does between a GET and the write that follows it. */

/* GET task?function=reinstallServer, one answer: a task is listed once past its fresh window
   unless purged, maybe listed before */
#define LIST(t) \
  if \
  :: t < nt && !t_purged[t] && t_age[t] >= FW -> seen = 1 \
  :: t < nt && !t_purged[t] && t_age[t] < FW -> seen = 1 \
  :: t < nt && !t_purged[t] && t_age[t] < FW -> seen = 0 \
  :: else -> seen = 0 \
  fi; \
  if \
  :: seen && t_epoch[t] >= j_id -> found = t \
  :: seen && t_epoch[t] < j_id -> older = 1 \
  :: else -> skip \
  fi; \
  seen = 0

/* a new intent: none in the journal (the caller's guard), no record of the desired spec, at most
   one reinstall per server and run, none after a failed one in this run, MAXI in all */
#ifdef STALE_PLAN
#define PLAN planned = !rec
#define CLEAR_PLAN planned = 0
#define NEW_OK (planned && !did_new && !failed && ni < MAXI)
#else
#define PLAN skip /* the record is read again under the lock: `planned && !rec` is `!rec` */
#define CLEAR_PLAN skip
#define NEW_OK (!rec && !did_new && !failed && ni < MAXI)
#endif

/* the API time a decision compares: read before the request (the answer is at least that
   recent), or, in CLOCK_AFTER_ANSWER, read again once the answer is in */
#ifdef CLOCK_AFTER_ANSWER
#define AGE_SEEN j_age
#else
#define AGE_SEEN a0
#endif

#define FORGET st = 0; t = 0; a0 = 0; found = 0; older = 0

/* SIGKILL before any step of a run: the crash is one more option wherever the run can go on
   (also while it waits). Memory is lost; the kernel releases the lock and closes the sockets,
   so an answer still on its way is lost; a POST already sent is still handled by Api. */
#define CRASH \
  :: atomic { \
       crashes < MAXCRASH -> \
       crashes++; again = 1; \
       if :: lock_owner == me + 1 -> lock_owner = 0 :: else -> skip fi; \
       if :: req_listener[1] == me + 1 -> req_listener[1] = 0 :: else -> skip fi; \
       if :: req_listener[2] == me + 1 -> req_listener[2] = 0 :: else -> skip fi; \
       ans_kind[me] = A_NONE; ans_task[me] = 0; CLEAR_PLAN; did_new = 0; failed = 0; FORGET; \
       goto start \
     }

proctype Run(byte me; byte attempts)
{
  bit again = 1, planned, did_new, failed, seen, older;
  byte found, st, t, a0;

start:
  do
  :: atomic {
       attempts > 0 && again -> attempts--;
plan:  PLAN; did_new = 0; failed = 0 /* the plan: the record as read before the lock */
     };
lock:
     if
     CRASH
     :: atomic { lock_owner != 0 -> again = 1 } /* "locked by ...": the operator reruns it */
     :: atomic { lock_owner == 0 -> lock_owner = me + 1 };
act:    do
        CRASH
        :: atomic { j_state == J_UNRESOLVED -> lock_owner = 0; again = 0; break } /* never again */
        :: atomic { j_state == J_NONE && !NEW_OK -> lock_owner = 0; again = 0; break }
        :: atomic {
             j_state == J_NONE && NEW_OK ->
journal:     assert(j_state == J_NONE); /* P6 */
             ni++; j_id = ni; j_state = J_JOURNALED; j_age = 0; j_task = 0; did_new = 1
           };
post:      if
           CRASH
#ifndef LAG_UNBOUNDED
           :: atomic { j_age >= LAG -> skip } /* too late to send: nothing sent; resolve it */
#endif
           :: atomic {
#ifndef LAG_UNBOUNDED
                j_age < LAG ->
#endif
                req_pend[j_id] = 1; req_age[j_id] = j_age; req_listener[j_id] = me + 1;
                ans_kind[me] = A_NONE; t = j_id
              };
answer:       if
              CRASH
              :: atomic {
                   ans_kind[me] == A_OK || ans_kind[me] == A_EXISTS ->
posted:            j_state = J_POSTED; j_task = ans_task[me]; ans_kind[me] = A_NONE; FORGET
                 }
              :: atomic {
                   ans_kind[me] == A_REFUSED ->
drop_refused:      assert(DROP_OK); j_state = J_NONE; ans_kind[me] = A_NONE; FORGET
                 }
              :: atomic { ans_kind[me] == A_LOST -> ans_kind[me] = A_NONE; FORGET }
              :: atomic { req_listener[t] == me + 1 -> req_listener[t] = 0; FORGET } /* timeout */
              fi /* lost or timed out: unknown; stays Journaled, resolved next time round */
           fi
        :: atomic {
             j_state == J_POSTED ->
track:       t = j_task; a0 = j_age;
             if
#ifndef PURGED_MEANS_ENDED
             :: rec && rec_task == t -> st = S_REC
#endif
             :: else ->
                if
                :: t_purged[t] || t_age[t] < FW -> st = S_404
                :: !t_purged[t] -> st = t_status[t]
                fi
             fi
           };
           if
           CRASH
           :: atomic { st == T_RUN -> FORGET } /* poll again */
           :: atomic {
                st == T_DONE ->
record:         assert(t_intent[t] == j_id); /* P5 */
                rec = 1; rec_task = t; st = 0
              };
drop_done:    if
              CRASH
              :: atomic { assert(DROP_OK); j_state = J_NONE; FORGET }
              fi
           :: atomic {
                st == S_REC ->
drop_recorded:  assert(DROP_OK); j_state = J_NONE; FORGET
              }
           :: atomic {
                st == T_FAIL ->
drop_failed:    assert(DROP_OK); j_state = J_NONE; failed = 1; FORGET
              }
           :: atomic { st == S_404 && AGE_SEEN < WAIT -> FORGET } /* fresh: poll again */
           :: atomic {
                st == S_404 && AGE_SEEN >= WAIT ->
#ifdef PURGED_MEANS_ENDED
                assert(DROP_OK); j_state = J_NONE; FORGET
#else
unresolve_purged: assert(history_gap); /* P7 */ j_state = J_UNRESOLVED; FORGET
#endif
              }
           fi
        :: atomic {
             j_state == J_JOURNALED ->
resolve:     found = NT; older = 0; a0 = j_age; LIST(0); LIST(1); LIST(2)
           };
           if
           CRASH
           :: atomic {
                found < NT ->
attach:         assert(t_intent[found] == j_id); /* P5 */
                j_state = J_POSTED; j_task = found; FORGET
              }
#ifdef BROKEN
           :: atomic { found == NT -> assert(DROP_OK); j_state = J_NONE; FORGET } /* not listed */
#else
           :: atomic { found == NT && AGE_SEEN < WAIT -> FORGET } /* wait: no POST; look again */
           :: atomic {
                found == NT && AGE_SEEN >= WAIT && older ->
drop_proved:    assert(DROP_OK); j_state = J_NONE; FORGET
              }
           :: atomic {
                found == NT && AGE_SEEN >= WAIT && !older ->
unresolve:      assert(history_gap); /* P7 */ j_state = J_UNRESOLVED; FORGET
              }
#endif
           fi
        od
     fi
  :: else -> break
  od
}

init
{
  atomic {
    /* an older reinstall, ended; Api may purge it from the first step on (a server reinstalled
       long ago, or never) */
    t_status[0] = T_DONE; t_age[0] = FW; t_epoch[0] = 0;
    run Run(0, ATTEMPTS);
    run Run(1, ATTEMPTS)
  }
}
