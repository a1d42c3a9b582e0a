// Command pulumi-language-python is the Python language host the project's engine set-up builds.
//
// Pulumi publishes its own host as the Go module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, but that module carries no
// version tags and the Go module proxy these machines reach refuses every version of it (see
// docs/engine.md). This host implements the same public gRPC contract (pulumirpc.LanguageRuntime)
// on top of Pulumi's public Go SDK at the CLI's version: the Python toolchain handling (pip, uv,
// poetry, the Pulumi.yaml virtualenv option) is the SDK's own python/toolchain package, and programs
// run through the SDK's own pulumi-language-python-exec script, exactly as Pulumi's host runs them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// bailExitCode is what pulumi-language-python-exec exits with after it has shown the user an
// actionable message: the engine then stops without adding a second, generic error.
const bailExitCode = 32

func main() {
	// The global flag set: it also holds the logging flags (-v, --logtostderr, ...) that the engine
	// passes to every plugin under `--logflow`. The rest are the flags Pulumi's own host accepts.
	flag.String("tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.String("root", "", "Project root path to use")
	virtualenv := flag.String("virtualenv", "", "Virtual environment path (overrides Pulumi.yaml)")
	tc := flag.String("toolchain", "", "Python toolchain (overrides Pulumi.yaml)")
	flag.String("typechecker", "", "Type checker (not supported by this host)")
	flag.Parse()
	logging.InitLogging(false, 0, false)
	engineAddress := ""
	if flag.NArg() > 0 {
		engineAddress = flag.Arg(0)
	}
	execPath, err := findExecScript()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	host := &languageHost{
		engineAddress: engineAddress, execPath: execPath,
		virtualenvOverride: *virtualenv, toolchainOverride: *tc,
	}
	if engineAddress != "" {
		// Exit when the engine goes away, as every Pulumi plugin does.
		go func() { _ = rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel) }()
	}
	cancelChannel := make(chan bool)
	go func() { <-ctx.Done(); close(cancelChannel) }()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelChannel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: could not start the gRPC server: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

// findExecScript locates pulumi-language-python-exec next to this binary (where the set-up puts
// it), or else on PATH.
func findExecScript() (string, error) {
	const name = "pulumi-language-python-exec"
	if self, err := os.Executable(); err == nil {
		candidate := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s was not found next to this binary or on PATH", name)
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu                 sync.Mutex
	engineAddress      string
	execPath           string
	virtualenvOverride string
	toolchainOverride  string
}

func (h *languageHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *languageHost) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

// resolveToolchain reads the runtime options of Pulumi.yaml (toolchain, virtualenv) from the
// program info the engine sends, and hands them to the SDK's toolchain package.
func (h *languageHost) resolveToolchain(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	opts := toolchain.PythonOptions{
		Root:       info.GetRootDirectory(),
		ProgramDir: info.GetProgramDirectory(),
	}
	options := info.GetOptions().AsMap()
	name, _ := options["toolchain"].(string)
	if h.toolchainOverride != "" {
		name = h.toolchainOverride
	}
	switch strings.ToLower(name) {
	case "", "auto":
		opts.Toolchain = toolchain.Auto
	case "pip":
		opts.Toolchain = toolchain.Pip
	case "uv":
		opts.Toolchain = toolchain.Uv
	case "poetry":
		opts.Toolchain = toolchain.Poetry
	default:
		return nil, fmt.Errorf("Pulumi.yaml runtime option toolchain=%q is not one of pip, uv, poetry", name)
	}
	if v, ok := options["virtualenv"].(string); ok {
		opts.Virtualenv = v
	}
	if h.virtualenvOverride != "" {
		opts.Virtualenv = h.virtualenvOverride
	}
	if tcName, ok := options["typechecker"].(string); ok && tcName != "" {
		return nil, fmt.Errorf("Pulumi.yaml runtime option typechecker=%q is not supported by this language host", tcName)
	}
	return toolchain.ResolveToolchain(opts)
}

// pluginListing is run by the program's Python: it names every installed distribution that ships a
// pulumi-plugin.json beside its top-level package (how Pulumi's Python packages declare the
// resource plugin they need).
const pluginListing = `
import json, importlib.metadata as md
seen, out = set(), []
for dist in md.distributions():
    for f in dist.files or ():
        parts = f.parts
        if len(parts) != 2 or parts[1] != "pulumi-plugin.json":
            continue
        try:
            meta = json.loads(f.locate().read_text())
        except (OSError, ValueError):
            continue
        if not meta.get("resource", False):
            continue
        name = meta.get("name") or dist.metadata["Name"].lower().replace("_", "-").removeprefix("pulumi-")
        version = meta.get("version") or dist.version
        if (name, version) in seen:
            continue
        seen.add((name, version))
        out.append({"name": name, "version": version, "server": meta.get("server", "")})
print(json.dumps(out))
`

type pluginRecord struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Server  string `json:"server"`
}

func (h *languageHost) listPlugins(ctx context.Context, info *pulumirpc.ProgramInfo) ([]pluginRecord, error) {
	tc, err := h.resolveToolchain(info)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, venvError(err)
	}
	cmd, err := tc.Command(ctx, "-c", pluginListing)
	if err != nil {
		return nil, err
	}
	cmd.Dir = info.GetProgramDirectory()
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return nil, fmt.Errorf("listing the installed Pulumi packages failed: %s", strings.TrimSpace(string(exitErr.Stderr)))
		}
		return nil, fmt.Errorf("listing the installed Pulumi packages failed: %w", err)
	}
	var plugins []pluginRecord
	if err := json.Unmarshal(out, &plugins); err != nil {
		return nil, fmt.Errorf("listing the installed Pulumi packages: unreadable answer %q: %w", out, err)
	}
	return plugins, nil
}

func (h *languageHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	plugins, err := h.listPlugins(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, p := range plugins {
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Kind: "resource", Name: p.Name, Version: p.Version, Server: p.Server,
		})
	}
	return resp, nil
}

func (h *languageHost) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	plugins, err := h.listPlugins(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	for _, p := range plugins {
		resp.Plugins = append(resp.Plugins, &pulumirpc.PluginDependency{
			Kind: "resource", Name: p.Name, Version: p.Version, Server: p.Server,
		})
	}
	return resp, nil
}

func venvError(err error) error {
	return fmt.Errorf("%w\nRun `pulumi install` in the project (or `./tasks setup`) to create it", err)
}

// Run executes the program with the SDK's pulumi-language-python-exec, as Pulumi's host does.
func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	tc, err := h.resolveToolchain(info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return &pulumirpc.RunResponse{Error: venvError(err).Error()}, nil
	}
	h.mu.Lock()
	engineAddress := h.engineAddress
	h.mu.Unlock()

	program := info.GetProgramDirectory()
	if entry := info.GetEntryPoint(); entry != "" && entry != "." {
		program = filepath.Join(program, entry)
	}
	args := []string{"-u", h.execPath,
		"--monitor", req.GetMonitorAddress(),
		"--engine", engineAddress,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
		"--root_directory", info.GetRootDirectory(),
	}
	if req.GetDryRun() {
		args = append(args, "--dry_run", "true")
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	configMap := req.GetConfig()
	if configMap == nil {
		configMap = map[string]string{} // a stack without config: the SDK expects an object, not null
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON))
	cmd.Dir = req.GetPwd()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == bailExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// streamWriter turns what the toolchain prints into InstallDependencies messages.
type streamWriter struct {
	send   func(*pulumirpc.InstallDependenciesResponse) error
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	buf := append([]byte(nil), p...)
	msg := &pulumirpc.InstallDependenciesResponse{Stdout: buf}
	if w.stderr {
		msg = &pulumirpc.InstallDependenciesResponse{Stderr: buf}
	}
	if err := w.send(msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

// InstallDependencies is `pulumi install`: the toolchain creates the virtualenv named in
// Pulumi.yaml and installs the project's requirements into it.
func (h *languageHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	info := req.GetInfo()
	tc, err := h.resolveToolchain(info)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	send := func(m *pulumirpc.InstallDependenciesResponse) error {
		mu.Lock()
		defer mu.Unlock()
		return server.Send(m)
	}
	var stdout, stderr io.Writer = streamWriter{send: send}, streamWriter{send: send, stderr: true}
	dir := req.GetDirectory()
	if dir == "" {
		dir = info.GetRootDirectory()
	}
	ctx := server.Context()
	if err := tc.InstallDependencies(ctx, dir, req.GetUseLanguageVersionTools(), true, stdout, stderr); err != nil {
		return err
	}
	return tc.InstallPackage(ctx, dir, req.GetUseLanguageVersionTools(), true, stdout, stderr)
}

func (h *languageHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := h.resolveToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	about, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: about.PythonExecutable,
		Version:    about.PythonVersion.String(),
	}, nil
}

func (h *languageHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := h.resolveToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pkgs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return resp, nil
}
