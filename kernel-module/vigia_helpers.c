// SPDX-License-Identifier: GPL-2.0
/*
 * The static inlines and macros vigia calls that have no Rust binding (the
 * 6.12 `kernel` crate has no RCU, task-list, per-CPU or mm accessors).
 * Each wrapper is a single call, as in the kernel's own rust/helpers/: every
 * decision stays in the Rust code. Going through the kernel's own accessors
 * (rather than re-implementing them on raw fields) keeps their lockdep and
 * RCU checks, which the test kernel turns on.
 */
#include <linux/cpumask.h>
#include <linux/cred.h>
#include <linux/kernel_stat.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seqlock.h>
#include <linux/swap.h>
#include <linux/tick.h>
#include <linux/uidgid.h>
#include <linux/vmstat.h>

#include "vigia_helpers.h"

/* RCU read side, held for the whole walk of the task list. */
void vigia_rcu_read_lock(void) { rcu_read_lock(); }
void vigia_rcu_read_unlock(void) { rcu_read_unlock(); }

/* The task list (for_each_process / for_each_thread). Caller holds RCU. */
struct task_struct *vigia_next_process(struct task_struct *p) { return next_task(p); }
struct task_struct *vigia_first_thread(struct task_struct *p)
{
	return list_first_or_null_rcu(&p->signal->thread_head, struct task_struct, thread_node);
}
struct task_struct *vigia_next_thread(struct task_struct *t) { return __next_thread(t); }

/* Per-task accessors, as fs/proc uses them. Caller holds RCU. */
pid_t vigia_task_ppid(struct task_struct *p) { return task_ppid_nr(p); }
uid_t vigia_task_uid(struct task_struct *p) { return from_kuid_munged(&init_user_ns, task_uid(p)); }
char vigia_task_state_char(struct task_struct *p) { return task_state_to_char(p); }
/* task_lock keeps ->mm and ->comm stable; a spinlock, so no sleeping. */
void vigia_task_lock(struct task_struct *p) { task_lock(p); }
void vigia_task_unlock(struct task_struct *p) { task_unlock(p); }
unsigned long vigia_mm_rss_pages(struct mm_struct *mm) { return get_mm_rss(mm); }
/* signal->stats_lock orders a dying thread's times moving into signal. */
unsigned int vigia_stats_read_begin(struct signal_struct *sig) { return read_seqbegin(&sig->stats_lock); }
int vigia_stats_read_retry(struct signal_struct *sig, unsigned int seq) { return read_seqretry(&sig->stats_lock, seq); }

/* CPUs and their cumulative times, as fs/proc/stat.c reads them. */
unsigned int vigia_nr_cpu_ids(void) { return nr_cpu_ids; }
unsigned int vigia_next_possible_cpu(int cpu) { return cpumask_next(cpu, cpu_possible_mask); }
int vigia_cpu_online(unsigned int cpu) { return cpu_online(cpu); }
void vigia_kcpustat_fetch(struct kernel_cpustat *dst, int cpu) { kcpustat_cpu_fetch(dst, cpu); }
u64 vigia_cpu_idle_time_us(int cpu) { return get_cpu_idle_time_us(cpu, NULL); }
u64 vigia_cpu_iowait_time_us(int cpu) { return get_cpu_iowait_time_us(cpu, NULL); }

/* Memory counters fs/proc/meminfo.c adds to si_meminfo(). */
unsigned long vigia_file_pages(void) { return global_node_page_state(NR_FILE_PAGES); }
unsigned long vigia_slab_reclaimable_pages(void) { return global_node_page_state_pages(NR_SLAB_RECLAIMABLE_B); }
unsigned long vigia_swapcache_pages(void) { return total_swapcache_pages(); }
long vigia_free_swap_pages(void) { return get_nr_swap_pages(); }
