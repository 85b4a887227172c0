//! A procs snapshot within the contract's bounds (`vigia_schema::bounds`).
//!
//! A sink dead-letters a snapshot of more than `MAX_PROCESSES` processes
//! or with names longer than the contract takes, and a host that has more
//! would then show no process list at all. So a publisher on such a host
//! sends the processes an operator looks for first: the busiest by CPU,
//! ties (and the many idle ones) broken by resident memory, and cuts a
//! name, user or state longer than its bound.

use vigia_schema::bounds::{
    clip, MAX_PROCESSES, MAX_PROCESS_NAME_LEN, MAX_STATE_LEN, MAX_USER_LEN,
};
use vigia_schema::ProcsBody;

/// Keeps at most `most` processes of `body`, the busiest, in their
/// original order (by pid, as read), and cuts over-long texts.
pub fn keep_busiest(body: &mut ProcsBody, most: usize) {
    if body.processes.len() > most {
        let mut order: Vec<usize> = (0..body.processes.len()).collect();
        let p = &body.processes;
        order.sort_unstable_by(|&a, &b| {
            p[b].cpu_pct
                .total_cmp(&p[a].cpu_pct)
                .then(p[b].rss.cmp(&p[a].rss))
                .then(a.cmp(&b))
        });
        let mut keep = vec![false; p.len()];
        for &i in &order[..most] {
            keep[i] = true;
        }
        let mut flags = keep.into_iter();
        body.processes.retain(|_| flags.next().unwrap_or(false));
    }
    for process in &mut body.processes {
        clip(&mut process.name, MAX_PROCESS_NAME_LEN);
        clip(&mut process.user, MAX_USER_LEN);
        clip(&mut process.state, MAX_STATE_LEN);
    }
}

/// [`keep_busiest`] with the contract's bound.
pub fn within_bounds(body: &mut ProcsBody) {
    keep_busiest(body, MAX_PROCESSES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigia_schema::ProcessEntry;

    fn process(pid: i32, cpu_pct: f32, rss: u64) -> ProcessEntry {
        ProcessEntry {
            pid,
            cpu_pct,
            rss,
            name: format!("p{pid}"),
            ..ProcessEntry::default()
        }
    }

    #[test]
    fn a_host_with_more_processes_sends_the_busiest_in_pid_order() {
        let mut body = ProcsBody {
            processes: vec![
                process(1, 0.0, 10),
                process(2, 50.0, 1),
                process(3, 0.0, 900),
                process(4, 5.0, 1),
                process(5, 0.0, 20),
            ],
        };
        keep_busiest(&mut body, 3);
        let pids: Vec<i32> = body.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [2, 3, 4]);
    }

    #[test]
    fn a_host_within_the_bound_keeps_every_process_and_long_names_are_cut() {
        let mut long = process(7, 0.0, 0);
        long.name = "é".repeat(MAX_PROCESS_NAME_LEN);
        long.user = "u".repeat(MAX_USER_LEN * 2);
        let mut body = ProcsBody {
            processes: vec![process(1, 0.0, 0), long],
        };
        within_bounds(&mut body);
        assert_eq!(body.processes.len(), 2);
        assert_eq!(body.processes[1].name.len(), MAX_PROCESS_NAME_LEN);
        assert_eq!(body.processes[1].user.len(), MAX_USER_LEN);
    }

    #[test]
    fn a_snapshot_over_the_bound_is_cut_to_it() {
        let mut body = ProcsBody {
            processes: (1..=MAX_PROCESSES as i32 + 500)
                .map(|pid| process(pid, 0.0, pid as u64))
                .collect(),
        };
        within_bounds(&mut body);
        assert_eq!(body.processes.len(), MAX_PROCESSES);
        assert_eq!(body.processes[0].pid, 501, "the smallest RSS went");
    }
}
