//! Generates the DPDK bindings and builds the C shim against the system DPDK found by pkg-config.
//!
//! The cflags are passed by hand to both bindgen and cc: the pkg-config crate drops
//! `-include rte_config.h`, without which the DPDK headers do not compile.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .expect("pkg-config must be installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "pkg-config libdpdk failed: install libdpdk-dev (scripts/setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `-include rte_config.h` is two words that must stay together.
    let text = String::from_utf8(out.stdout).expect("pkg-config output is UTF-8");
    let mut flags = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        if word == "-include" {
            if let Some(file) = words.next() {
                flags.push(format!("-include{file}"));
            }
        } else {
            flags.push(word.to_string());
        }
    }
    flags
}

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");

    let cflags = pkg_config(&["--cflags"]);
    let libs = pkg_config(&["--libs"]);
    let version = pkg_config(&["--modversion"]).join("");
    println!("cargo:version={version}");

    let mut build = cc::Build::new();
    build.file("shim/shim.c").opt_level(3).warnings(false);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("anygate_dpdk_shim");

    for lib in &libs {
        if let Some(name) = lib.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={name}");
        } else if let Some(dir) = lib.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&cflags)
        .allowlist_function("ag_.*")
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_lcore_.*")
        .allowlist_function("rte_get_.*")
        .allowlist_function("rte_thread_.*")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_dev_probe")
        .allowlist_function("rte_dev_remove")
        .allowlist_function("rte_version")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_eth_.*")
        .allowlist_var("RTE_ETH_.*")
        .allowlist_var("RTE_MBUF_.*")
        .allowlist_var("RTE_MAX_.*")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("SOCKET_ID_ANY")
        // Unions bindgen cannot lay out; nothing here uses them.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate_inline_functions(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    bindings.write_to_file(out.join("dpdk_sys.rs")).expect("write the bindings");

    ipsec_mb(&out);
}

/// Bindings over Intel's multi-buffer crypto library (the one DPDK's own `crypto_ipsec_mb` driver
/// runs on; libdpdk-dev depends on it): only the manager that picks the CPU's code path and the
/// AES-GCM key and context types.
fn ipsec_mb(out: &std::path::Path) {
    println!("cargo:rustc-link-lib=dylib=IPSec_MB");
    let bindings = bindgen::Builder::default()
        .header_contents("ipsec_mb.h", "#include <stdint.h>\n#include <intel-ipsec-mb.h>\n")
        // The header aligns the GCM key data to 64 bytes only when it is told the OS.
        .clang_arg("-DLINUX")
        .allowlist_function("alloc_mb_mgr")
        .allowlist_function("init_mb_mgr_auto")
        .allowlist_function("free_mb_mgr")
        .allowlist_function("imb_get_version_str")
        .allowlist_type("IMB_MGR")
        .allowlist_type("gcm_key_data")
        .allowlist_type("gcm_context_data")
        .allowlist_type("IMB_ARCH")
        .allowlist_var("IMB_FEATURE_VAES")
        .allowlist_var("IMB_FEATURE_VPCLMULQDQ")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over intel-ipsec-mb.h (libipsec-mb-dev, scripts/setup.sh)");
    bindings.write_to_file(out.join("ipsec_mb_sys.rs")).expect("write the bindings");
}
