fn main() -> std::process::ExitCode {
    mfp_host::cli::main()
}
