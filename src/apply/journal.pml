/*
 * journal.pml: the intent journal of `ovhform apply` and its resolution, for ONE server
 * (issue 9, "Crash safety"). This model is the specification of the journal code in src/apply/
 * (intent.rs: post_reinstall, resolve; mod.rs: Run::finish_intent, Run::finish_install,
 * Run::reinstall, Run::reread; track.rs: track): change one, change the other.
 * scripts/model-check.sh checks it with spin (scripts/test.sh runs that, so CI does);
 * docs/ARCHITECTURE.md "Crash safety model" says what it covers and what not.
 *
 * The world
 *   j_*, rec, rec_task,  the state store (journal entry; install record and its task; the
 *   fnote                failure note, FailedInstall, naming its task): survives crashes. Every
 *                        write is one `atomic` step (the store writes by rename: all or nothing).
 *   lock_owner           the store's file lock; the kernel releases it when its holder dies.
 *   proctype Run         one `ovhform apply` (mod.rs apply). Two race for the lock; each is
 *                        started again by its operator after a crash or after losing the lock
 *                        (ATTEMPTS starts each).
 *   CRASH                SIGKILL before any step of a run, also while it waits (MAXCRASH in all):
 *                        memory is lost, the kernel releases the lock and closes the sockets (an
 *                        answer still on its way is lost), a POST already sent stays sent. A run
 *                        that ends early with an error (API or store error, tracking's timeout:
 *                        StoppedWaiting) leaves the store as a crash there does.
 *   proctype Api         OVH: handles each POST, maybe long after the client gave up or died;
 *                        starts the task, or refuses (4xx), or answers TaskAlreadyExists; loses
 *                        answers; ends tasks (done or failed); purges ended tasks, oldest first,
 *                        once they are at least H old.
 *   proctype Clock       the API clock, as ages rather than dates: j_age = now - the intent's
 *                        `created`, t_age[t] = now - task t's start, trk = how long the lock
 *                        holder has been tracking its task (track.rs `started`), all saturating
 *                        past every threshold, so time is unbounded and the state space finite.
 *   task slot 0          an older reinstall, ended, older than H, that Api may purge from the
 *                        first step on (a server reinstalled long ago, or never): the witness
 *                        that the history still reaches back before an intent.
 *
 * Time (ticks of the API clock; TrackingConfig in track.rs)
 *   FW    fresh_window: for up to FW after its start a task may be missing from the task list,
 *         and its GET may answer 404 (each request independently: not monotonic).
 *   LAG   post_deadline and post_lag, taken equal (the worst case of post_lag >= post_deadline):
 *         the POST is sent only while now - created < LAG, else not at all, and the API starts
 *         the task (or refuses it) no later than created + LAG.
 *   WAIT  = LAG + FW: what resolution waits out since `created` before concluding anything from
 *         a task's absence (resolve's window_end).
 *   H     purge_horizon (H > WAIT): a task is never purged before it is H old, so while the
 *         intent is younger than H its task, if any, is still in the history.
 *   "Wait" decisions compare a lower bound of the time the answer was served: the API time read
 *   BEFORE the request (a0). The horizon decision compares an upper bound: the API time read
 *   AFTER the answer (j_age at the decision). Tracking's 404 decision compares trk read before
 *   the GET. "A task started at or after the intent" is exact here (t_epoch): `created` is a
 *   lower bound of the API time at the journal write.
 *
 * Protocol step -> model label -> Rust (src/apply/; crash points in quotes)
 *   lock; a second run fails      `lock:`        caller: FileStore::open_locked (state/file.rs)
 *   the plan                      `plan:`        plan::planner, before the lock (a saved plan)
 *   intents first, records        `act:`         mod.rs apply: store.intents(), records_at_start
 *     re-read under the lock                     ("apply:start"); Run::server: a server with an
 *                                                intent gets finish_intent only (no_new)
 *   never POST with an intent,    `act:`         NEW_OK: journal empty, Run::reread's record
 *     nor on a stale plan                        check (records_at_start vs based_on), one
 *                                                reinstall per server and run
 *   (1) intent Journaled          `journal:`     post_reinstall: created = api_now - CLOCK_ERROR,
 *                                                store.put_intent ("intent:after-journal")
 *   (2) POST, once, by deadline   `post:`        Client::start_install_before(send_by)
 *       not sent (deadline passed `drop_unsent:` post_reinstall: e.is_unsent() -> drop_intent
 *       or connection refused)
 *       answer lost / unknown     `answer:`      timeout, 5xx, reset, 429: stays Journaled and
 *                                                post_reinstall resolves it (loop below)
 *       refused (4xx, incl.       `drop_refused:` post_reinstall: is_refusal() -> drop_intent
 *       TaskAlreadyExists)
 *   (3) rewrite as Posted{task}   `posted:`      post_reinstall put_intent(Posted)
 *                                                ("intent:after-posted-journal")
 *   (4) track the task            `track:`       track.rs track: one GET per poll
 *   (5) done: record, then drop   `record:`      finish_install: store_record
 *                                 `drop_done:`   then drop_intent ("install:after-drop-intent");
 *                                                tags after that, best effort (not modelled)
 *       failed: note, then drop   `fail_note:`   finish_install: records.failed[server] = task
 *                                 `drop_failed:` then drop_intent
 *       404 once tracked for FW   `purged:`      track -> TaskEnd::Purged; finish_install loads
 *         the store holds THIS    `drop_recorded:` the records: installs[server].task_id ==
 *           task's record                        task -> drop_intent
 *         otherwise               `unresolve_purged:` put_intent(Unresolved)
 *   resolution of Journaled       `resolve:`     finish_intent / post_reinstall's loop: now =
 *                                                api_now (a0), then intent::resolve:
 *     list reinstallServer tasks  `list:`        client.list_tasks(function=reinstallServer)
 *     read them                   `get:`         client.get_tasks (404 -> missing)
 *     a task started >= created   `attach:`      Resolution::Attached -> put_intent(Posted),
 *                                                then tracked as (4) ("resolve:after-attach")
 *     a listed, unreadable task   (wait)         Resolution::Wait: see UNREADABLE_ATTACH
 *       newer than every readable                (past WAIT the code says Unresolved, which
 *                                                the FW assumption below makes unreachable)
 *     none, a0 < WAIT             (wait)         Resolution::Wait: look again later, no POST
 *     none, now < created + H     `drop_horizon:` Resolution::NoTask -> drop_intent
 *     else the oldest task of the `history:`     list_tasks(all), get_tasks(oldest)
 *       history, read:
 *       older than the intent     `drop_proved:` Resolution::NoTask -> drop_intent
 *       otherwise                 `unresolve:`   Resolution::Unresolved -> put_intent
 *   resolution of Posted{task}    `track:`       resolve -> Attached(task) at once; as (4)
 *   Unresolved                    `act:`         nothing more for the server, ever (no person in
 *                                                the model)
 *   Not modelled, as it only removes behaviours: Run::reread's checks for a running or
 *   unreadable task before the POST (the model POSTs regardless), the "no new destructive work
 *   after a failure" rule across servers.
 *
 * Properties
 *   P1 at most one reinstall task per intent                              assert, Api
 *   P2 per approved server: no POST reaches the API while a task ovhform started runs, and a
 *      task starts only if every earlier one ovhform started failed (never a second install
 *      after a successful one; never two at once, whatever TaskAlreadyExists does)  assert, Api
 *   P3 no task starts for an intent that is no longer in the journal      assert, Api
 *   P4 an intent is dropped only when its outcome is durable: no task was started for it and no
 *      POST for it is in flight, or its task ended done and the store holds that task's record,
 *      or it ended failed and the store holds that task's failure note   assert, every drop
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
 *   CLOCK_AFTER_ANSWER      resolution's wait compares the API time read after the answer.
 *   CREATED_ESTIMATE        `created` is the estimated API time, not a lower bound: a task
 *                           started within the estimate's error compares as older than its intent.
 *   PURGE_ANY_AGE           the horizon proof without its assumption: Api purges ended tasks at
 *                           any age (oldest first still).
 *   HORIZON_CLOCK_BEFORE    the horizon decision compares the API time read before the list
 *                           request (a0), not after its answer.
 *   UNREADABLE_ATTACH       a listed reinstall task that answers 404 and is newer than every
 *                           readable one is attached to, though it may be an older task.
 *   SKEW_ATTACH             a task started shortly before the intent (in the same tick; the
 *                           code had a 60 s tolerance) counts as started at or after it.
 *   TRACK_AFTER_ANSWER      tracking's 404 decision compares the time tracked, read after the
 *                           answer.
 *   SEND_BY_LATE            the POST's deadline runs from an instant later than `created` (one
 *                           tick here; the code took send_by after api_now's await, which may
 *                           fetch /auth/time, while `created` came from the clock read before).
 *   The last five flaws were in the code when this model was aligned with it; each is fixed
 *   and has a regression test in tests/it/intent_resolve.rs (SEND_BY_LATE: the model only, as
 *   the gap is one await).
 *
 * Assumptions (not checked): store writes are atomic and durable; the lock is exclusive; the API
 * starts a task (or refuses) within LAG of `created` when the POST was sent before that (post_lag);
 * a task younger than H is never purged (purge_horizon), and ended tasks are purged oldest first;
 * once FW old, a task not purged is listed and readable; task ids grow with start times; task
 * dates and /auth/time share one clock; no one but ovhform starts tasks on the server (hence
 * TaskAlreadyExists, though modelled, is never answered to the verified protocol: pan lists that
 * branch of Api as unreached).
 */

/* ---- sizes and constants (FW, LAG, H, ATTEMPTS, MAXCRASH: override with spin -D...) ---- */
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
#ifndef H
#define H         (WAIT + 1)  /* the smallest horizon the proof can use: one tick past WAIT */
#endif
#ifdef SEND_BY_LATE
#define SEND_LIMIT (LAG + 1)  /* the POST may leave one tick past `created` + LAG */
#else
#define SEND_LIMIT LAG
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

#define A_NONE    0
#define A_OK      1
#define A_REFUSED 2
#define A_EXISTS  3
#define A_LOST    4

/* ---- the state store (persistent) ---- */
byte j_state = J_NONE;  /* the journal entry of the server: at most one intent */
byte j_id;              /* which intent (1..MAXI) */
byte j_task;            /* Posted{task} */
byte j_age;             /* API now - the intent's `created`, saturating at H */
bit  rec;               /* the install record of the desired spec */
byte rec_task;          /* its task */
byte fnote;             /* the failed-install note: its task, 0 = none */
byte lock_owner;        /* 0 = free, else run + 1 */
byte trk;               /* how long the lock holder has tracked its task, saturating at FW */

/* ---- the API ---- */
byte nt = 1;            /* task slots used */
byte t_status[NT];
byte t_age[NT];         /* API now - start, saturating at H */
bit  t_purged[NT];
byte t_epoch[NT];       /* intents made before the task started: started >= intent i's created
                           iff t_epoch >= i (same instant counts as after, as in ">=") */
#ifdef SKEW_ATTACH
byte t_skew[NT];        /* the intent made in the tick the task started, after it (0: none) */
#endif
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
/* P4: the outcome of task k is in the store */
#define KEPT(k) (t_status[k] == T_DONE && rec && rec_task == k || t_status[k] == T_FAIL && fnote == k)
#define DROP_OK (!req_pend[j_id] && (tasks_of[j_id] == 0 || KEPT(task_of[j_id])))

ltl unresolved_is_final { [] ((j_state == J_UNRESOLVED) -> [] (j_state == J_UNRESOLVED)) }

/* ---- the API clock ---- */
#define FRESH(t) (t < nt && t_age[t] < FW)
#define YOUNG(t) (t < nt && t_age[t] < H)
#define TRACKING (lock_owner != 0 && j_state == J_POSTED && trk < FW)
#define TICK_USEFUL ((j_state == J_JOURNALED || j_state == J_POSTED) && j_age < H \
                     || YOUNG(1) || YOUNG(2) || TRACKING)
#ifdef LAG_UNBOUNDED
#define TICK_OK TICK_USEFUL
#else
/* the API handles a POST no later than LAG after its intent's `created` (SEND_BY_LATE: one
   tick later, as the POST may leave that late) */
#define TICK_OK (TICK_USEFUL && !(req_pend[1] && req_age[1] >= SEND_LIMIT) \
                 && !(req_pend[2] && req_age[2] >= SEND_LIMIT))
#endif
#define AGE_TASK(t) if :: YOUNG(t) -> t_age[t]++ :: else -> skip fi
#define AGE_REQ(i)  if :: req_pend[i] && req_age[i] < SEND_LIMIT -> req_age[i]++ :: else -> skip fi

active proctype Clock()
{
end:
  do
  :: d_step {
       TICK_OK ->
       if
       :: (j_state == J_JOURNALED || j_state == J_POSTED) && j_age < H -> j_age++
       :: else -> skip
       fi;
       if
       :: TRACKING -> trk++
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
    :: t_status[1] == T_RUN || t_status[2] == T_RUN -> a = A_EXISTS \
    :: else -> \
       if \
       :: nt < NT -> \
          assert(tasks_of[i] == 0); /* P1 */ \
          assert(!(nt > 1 && t_status[1] == T_DONE)); /* P2 (nt <= 2 here: slot 1 at most) */ \
          assert(j_state != J_NONE && j_id == i); /* P3 */ \
          k = nt; nt++; \
          t_status[k] = T_RUN; t_age[k] = 0; t_epoch[k] = EPOCH; t_intent[k] = i; \
          tasks_of[i]++; task_of[i] = k; a = A_OK \
       :: a = A_REFUSED /* validation 4xx: no task */ \
       fi \
    fi; \
    if \
    :: req_listener[i] != 0 -> \
       if \
       :: ans_task[req_listener[i] - 1] = k; ans_kind[req_listener[i] - 1] = a \
       :: ans_kind[req_listener[i] - 1] = A_LOST /* timeout, 5xx, reset after sending */ \
       fi \
    :: else -> skip /* nobody listens any more: the answer is lost */ \
    fi; \
    req_pend[i] = 0; req_listener[i] = 0; req_age[i] = 0; k = 0; a = A_NONE \
  }

#define FINISH(t) \
  atomic { t_status[t] == T_RUN -> if :: t_status[t] = T_DONE :: t_status[t] = T_FAIL fi }

/* only ended tasks, at least H old (PURGE_ANY_AGE: any age) */
#ifdef PURGE_ANY_AGE
#define PURGEABLE(t) ENDED(t)
#else
#define PURGEABLE(t) (ENDED(t) && t_age[t] >= H)
#endif

active proctype Api()
{
  byte k, a;
end:
  do
  :: HANDLE_POST(1)
  :: HANDLE_POST(2)
  :: FINISH(1)
  :: FINISH(2)
  /* purge: oldest first */
  :: atomic { !t_purged[0] && PURGEABLE(0) -> t_purged[0] = 1; history_gap = 1 }
  :: atomic { 1 < nt && t_purged[0] && !t_purged[1] && PURGEABLE(1) -> t_purged[1] = 1 }
  :: atomic { 2 < nt && t_purged[1] && !t_purged[2] && PURGEABLE(2) -> t_purged[2] = 1 }
  od
}

/* ---- one `ovhform apply` ---- */
/* Every step is one `atomic`: one action seen outside the process (a journal or record write, a
   request, an answer) with the local bookkeeping around it; CRASH is an option before each. A
   request's answer and the decision taken on it are separate steps: the world (tasks, the clock)
   moves in between, as it does between a GET and the write that follows it. */

/* GET task?function=reinstallServer: a task is listed once past its fresh window unless
   purged, maybe listed before */
#define LIST(t) \
  if \
  :: t < nt && !t_purged[t] -> lst[t] = 1 \
  :: t < nt && !t_purged[t] && t_age[t] < FW -> skip \
  :: else -> skip \
  fi

/* the started-at-or-after-the-intent test (intent.rs resolve: startDate >= since) */
#ifdef SKEW_ATTACH
#define OURS(t) (t_epoch[t] >= j_id || t_skew[t] == j_id)
#else
#define OURS(t) (t_epoch[t] >= j_id)
#endif

/* GET of a listed task (get_tasks): read (purged since the list: 404; fresh: maybe 404) ->
   ours (found: the newest), or the newest other readable one (nr, as slot + 1); 404 -> the
   newest unreadable one (nu, as slot + 1) */
#define GET(t) \
  if \
  :: lst[t] && !t_purged[t] -> \
     if \
     :: OURS(t) -> found = t \
     :: else -> nr = t + 1 \
     fi \
  :: lst[t] && (t_purged[t] || t_age[t] < FW) -> nu = t + 1 \
  :: else -> skip \
  fi; \
  lst[t] = 0

/* the oldest task of the whole history (list_tasks, any function; min id), as t */
#define OLDEST(s) \
  if \
  :: t == NT && s < nt && !t_purged[s] -> t = s \
  :: t == NT && s < nt && !t_purged[s] && t_age[s] < FW -> skip \
  :: else -> skip \
  fi

/* a new intent: none in the journal (the caller's guard), none at the run's start (no_new: a
   server with an intent gets finish_intent only), no record of the desired spec, at most one
   reinstall per server and run (no_new), MAXI in all */
#ifdef STALE_PLAN
#define PLAN planned = !rec
#define CLEAR_PLAN planned = 0
#define NEW_OK (planned && !no_new && ni < MAXI)
#else
#define PLAN skip /* Run::reread: the record as the plan saw it == records_at_start, read under the
                     lock; in this model's one spec that is `planned && !rec`, that is `!rec` */
#define CLEAR_PLAN skip
#define NEW_OK (!rec && !no_new && ni < MAXI)
#endif

/* the API time resolution's wait compares: read before the request (the answer is at least
   that recent), or, in CLOCK_AFTER_ANSWER, read again once the answer is in */
#ifdef CLOCK_AFTER_ANSWER
#define WAIT_AGE j_age
#else
#define WAIT_AGE a0
#endif
/* the API time the horizon compares: read after the answer (the list was served no later) */
#ifdef HORIZON_CLOCK_BEFORE
#define HORIZON_AGE a0
#else
#define HORIZON_AGE j_age
#endif
/* the time tracked that tracking's 404 decision compares: read before the GET */
#ifdef TRACK_AFTER_ANSWER
#define TRACK_AGE trk
#else
#define TRACK_AGE a0
#endif

#define FORGET st = 0; t = 0; a0 = 0; found = 0; nu = 0; nr = 0

/* the run ends: the lock is released */
#define EXIT lock_owner = 0; trk = 0; again = 0; break

/* SIGKILL before any step of a run: the crash is one more option wherever the run can go on
   (also while it waits). Memory is lost; the kernel releases the lock and closes the sockets,
   so an answer still on its way is lost; a POST already sent is still handled by Api. */
#define CRASH \
  :: atomic { \
       crashes < MAXCRASH -> \
       crashes++; again = 1; \
       if :: lock_owner == me + 1 -> lock_owner = 0; trk = 0 :: else -> skip fi; \
       if :: req_listener[1] == me + 1 -> req_listener[1] = 0 :: else -> skip fi; \
       if :: req_listener[2] == me + 1 -> req_listener[2] = 0 :: else -> skip fi; \
       ans_kind[me] = A_NONE; ans_task[me] = 0; CLEAR_PLAN; no_new = 0; FORGET; \
       lst[0] = 0; lst[1] = 0; lst[2] = 0; \
       goto start \
     }

proctype Run(byte me; byte attempts)
{
  bit again = 1, planned, no_new;
  bit lst[NT];
  byte found, st, t, a0, nu, nr;

start:
  do
  :: atomic {
       attempts > 0 && again -> attempts--;
plan:  PLAN; no_new = 0 /* the plan: the record as read before the lock */
     };
lock:
     if
     CRASH
     :: atomic { lock_owner != 0 -> again = 1 } /* "locked by ...": the operator reruns it */
     :: atomic {
          lock_owner == 0 -> lock_owner = me + 1; trk = 0;
          no_new = (j_state != J_NONE) /* intents are read at the start, under the lock */
        };
act:    do
        CRASH
        :: atomic { j_state == J_UNRESOLVED -> EXIT } /* never again */
        :: atomic { j_state == J_NONE && !NEW_OK -> EXIT }
        :: atomic {
             j_state == J_NONE && NEW_OK ->
journal:     assert(j_state == J_NONE); /* P6 */
             ni++; j_id = ni; j_state = J_JOURNALED; j_age = 0; j_task = 0; no_new = 1;
#ifdef SKEW_ATTACH
             if :: nt > 1 && t_age[1] == 0 -> t_skew[1] = ni :: else -> skip fi;
#endif
             skip
           };
post:      if
           CRASH
           :: atomic { /* deadline passed, or connection refused: nothing sent */
                j_state == J_JOURNALED ->
drop_unsent:    assert(DROP_OK); j_state = J_NONE; FORGET
              }
           :: atomic {
#ifndef LAG_UNBOUNDED
                j_age < SEND_LIMIT ->
#endif
                req_pend[j_id] = 1; req_listener[j_id] = me + 1;
#ifdef SEND_BY_LATE
                req_age[j_id] = 0; /* the API's bound runs from the late deadline */
#else
                req_age[j_id] = j_age;
#endif
                ans_kind[me] = A_NONE; t = j_id
              };
answer:       if
              CRASH
              :: atomic {
                   ans_kind[me] == A_OK ->
posted:            j_state = J_POSTED; j_task = ans_task[me]; trk = 0;
                   ans_kind[me] = A_NONE; ans_task[me] = 0; FORGET
                 }
              :: atomic {
                   ans_kind[me] == A_REFUSED || ans_kind[me] == A_EXISTS ->
drop_refused:      assert(DROP_OK); j_state = J_NONE; ans_kind[me] = A_NONE; FORGET
                 }
              :: atomic { ans_kind[me] == A_LOST -> ans_kind[me] = A_NONE; FORGET }
              :: atomic { req_listener[t] == me + 1 -> req_listener[t] = 0; FORGET } /* timeout */
              fi /* lost or timed out: unknown; stays Journaled, resolved next time round */
           fi
        :: atomic {
             j_state == J_POSTED ->
track:       t = j_task; a0 = trk;
             if
             :: t_purged[t] || t_age[t] < FW -> st = S_404
             :: !t_purged[t] -> st = t_status[t]
             fi
           };
           if
           CRASH
           :: atomic { st == T_RUN -> FORGET } /* poll again */
           :: atomic {
                st == T_DONE ->
record:         assert(t_intent[t] == j_id); /* P5 */
                rec = 1; rec_task = t; fnote = 0; st = 0
              };
drop_done:    if
              CRASH
              :: atomic { assert(DROP_OK); j_state = J_NONE; FORGET }
              fi
           :: atomic {
                st == T_FAIL ->
fail_note:      fnote = t; st = 0
              };
drop_failed:  if
              CRASH
              :: atomic { assert(DROP_OK); j_state = J_NONE; FORGET }
              fi
           :: atomic { st == S_404 && TRACK_AGE < FW -> FORGET } /* fresh: poll again */
           :: atomic {
                st == S_404 && TRACK_AGE >= FW ->
#ifdef PURGED_MEANS_ENDED
                assert(DROP_OK); j_state = J_NONE; FORGET
#else
purged:         if
                :: rec && rec_task == t ->
drop_recorded:     assert(DROP_OK); j_state = J_NONE
                :: else ->
unresolve_purged:  assert(history_gap); /* P7 */ j_state = J_UNRESOLVED
                fi;
                FORGET
#endif
              }
           fi
        :: atomic {
             j_state == J_JOURNALED ->
resolve:     a0 = j_age /* api_now, before the requests */
           };
           if
           CRASH
           :: atomic {
                j_state == J_JOURNALED ->
list:           LIST(0); LIST(1); LIST(2)
              }
           fi;
           if
           CRASH
           :: atomic {
                j_state == J_JOURNALED ->
get:            found = NT; nu = 0; nr = 0; GET(0); GET(1); GET(2)
              }
           fi;
           if
           CRASH
           :: atomic {
                found < NT ->
attach:         assert(t_intent[found] == j_id); /* P5 */
                j_state = J_POSTED; j_task = found; trk = 0; FORGET
              }
#ifdef BROKEN
           :: atomic { found == NT -> assert(DROP_OK); j_state = J_NONE; FORGET } /* not listed */
#else
#ifdef UNREADABLE_ATTACH
           :: atomic {
                found == NT && nu > nr ->
                assert(t_intent[nu - 1] == j_id); /* P5 */
                j_state = J_POSTED; j_task = nu - 1; trk = 0; FORGET
              }
#else
           :: atomic { found == NT && nu > nr -> FORGET } /* unreadable, maybe ours: wait */
#endif
           :: atomic { found == NT && nu <= nr && WAIT_AGE < WAIT -> FORGET } /* wait; no POST */
           :: atomic {
                found == NT && nu <= nr && WAIT_AGE >= WAIT && HORIZON_AGE < H ->
drop_horizon:   assert(DROP_OK); j_state = J_NONE; FORGET
              }
           :: atomic {
                found == NT && nu <= nr && WAIT_AGE >= WAIT && HORIZON_AGE >= H ->
history:        t = NT; OLDEST(0); OLDEST(1); OLDEST(2);
                if /* GET of the oldest one: read (when fresh, maybe 404), older than the intent */
                :: t < NT && t_epoch[t] < j_id -> st = 1
                :: t < NT && t_age[t] < FW -> skip
                :: else -> skip
                fi;
                if
                :: st == 1 ->
drop_proved:       assert(DROP_OK); j_state = J_NONE
                :: else ->
unresolve:         assert(history_gap); /* P7 */ j_state = J_UNRESOLVED
                fi;
                FORGET
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
    /* an older reinstall, ended, older than H; Api may purge it from the first step on (a
       server reinstalled long ago, or never) */
    t_status[0] = T_DONE; t_age[0] = H; t_epoch[0] = 0;
    run Run(0, ATTEMPTS);
    run Run(1, ATTEMPTS)
  }
}
