//! The Environment Abstraction Layer: initialised once per process, then lcores, launch and time.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::OnceLock;

use crate::error::Error;
use crate::sys;

/// Proof that the EAL is initialised; everything else in this crate needs it to exist.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

static EAL: OnceLock<Result<Eal, Error>> = OnceLock::new();

impl Eal {
    /// Initialise the EAL with these arguments (without the program name), once per process.
    ///
    /// DPDK cannot initialise twice in one process, so a later call returns the first result,
    /// whatever arguments it is given; [`Eal::args`] tells which ones are in force.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<&'static Eal, Error> {
        let result = EAL.get_or_init(|| {
            let mut all = vec!["anygate".to_string()];
            all.extend(args.iter().map(|a| a.as_ref().to_string()));
            let cstrings: Vec<CString> = all
                .iter()
                .map(|a| {
                    CString::new(a.as_str()).map_err(|_| Error::new(format!("EAL argument {a:?} holds a NUL"), 22))
                })
                .collect::<Result<_, _>>()?;
            // The EAL may keep pointers into argv for the life of the process: leak both.
            let cstrings: &'static [CString] = Box::leak(cstrings.into_boxed_slice());
            let argv: &'static mut [*mut c_char] =
                Box::leak(cstrings.iter().map(|c| c.as_ptr() as *mut c_char).collect::<Vec<_>>().into_boxed_slice());
            let argc = argv.len() as c_int;
            // SAFETY: argv holds argc valid NUL-terminated strings that live for the whole process;
            // OnceLock guarantees this runs at most once per process, as DPDK requires.
            let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
            if rc < 0 {
                return Err(Error::from_errno("rte_eal_init"));
            }
            Ok(Eal { args: all[1..].to_vec() })
        });
        result.as_ref().map_err(Clone::clone)
    }

    /// The initialised EAL, if [`Eal::init`] has succeeded in this process.
    pub fn get() -> Option<&'static Eal> {
        EAL.get().and_then(|r| r.as_ref().ok())
    }

    /// The arguments the EAL was initialised with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The lcore running the main thread.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised (self exists); this reads its configuration.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The worker lcores given with `-l`, in order, without the main lcore.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut lcores = Vec::new();
        // SAFETY: the EAL is initialised; rte_get_next_lcore only reads its lcore table.
        let mut next = unsafe { sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while next < sys::RTE_MAX_LCORE {
            lcores.push(next);
            // SAFETY: as above.
            next = unsafe { sys::rte_get_next_lcore(next, 1, 0) };
        }
        lcores
    }

    /// Run `job` on the worker lcore `lcore` (a thread the EAL created, pinned to its core).
    pub fn launch<F>(&self, lcore: u32, job: F) -> Result<(), Error>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let boxed: Box<Box<dyn FnOnce() -> i32 + Send>> = Box::new(Box::new(job));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: `launch_trampoline` matches lcore_function_t and takes ownership of `arg`, a
        // leaked Box it reclaims exactly once; the closure is Send, so running it on another
        // thread is sound.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(launch_trampoline), arg, lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so the trampoline never ran and `arg` is still ours.
            drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) });
            return Err(Error::new(format!("launch on lcore {lcore}"), rc));
        }
        Ok(())
    }

    /// Wait for the job on `lcore` to return, and give its return value.
    pub fn wait(&self, lcore: u32) -> i32 {
        // SAFETY: the EAL is initialised; waiting on an idle lcore returns at once.
        unsafe { sys::rte_eal_wait_lcore(lcore) }
    }

    /// Register the calling (non-EAL) thread with DPDK, so that it gets an lcore id and mempool caches.
    pub fn register_thread(&self) -> Result<(), Error> {
        // SAFETY: the EAL is initialised; registering the calling thread has no other precondition.
        let rc = unsafe { sys::rte_thread_register() };
        if rc < 0 {
            return Err(Error::from_errno("rte_thread_register"));
        }
        Ok(())
    }

    /// DPDK's version string.
    pub fn version() -> String {
        // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(sys::ag_version()) }.to_string_lossy().into_owned()
    }
}

extern "C" fn launch_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box leaked by Eal::launch, handed to exactly one trampoline call.
    let job = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) };
    // A panic must not unwind into C.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// The calling thread's lcore id (`u32::MAX` for a thread unknown to DPDK).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local; no preconditions.
    unsafe { sys::ag_lcore_id() }
}

/// The time stamp counter.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the TSC; no preconditions.
    unsafe { sys::ag_rdtsc() }
}

/// TSC ticks per second, as the EAL measured them.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL computed at init; 0 before init.
    unsafe { sys::rte_get_tsc_hz() }
}
