/** Shown instead of the studio when this browser cannot give us a GPU: how to get WebGPU. */
export function NoWebGpu(props: { reason: string }) {
  return (
    <div className="nowebgpu" data-testid="no-webgpu">
      <div className="nowebgpu-card">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden>
            ◆
          </span>{' '}
          LoRA Studio
        </div>
        <h1>LoRA Studio needs WebGPU</h1>
        <p className="lead">
          Training runs on your own graphics card through WebGPU, and this browser did not give us one. Nothing is
          uploaded anywhere, so there is no server to fall back to.
        </p>
        <p className="muted small">Reason: {props.reason}</p>
        <h2>How to get WebGPU</h2>
        <ul className="howto">
          <li>
            <strong>Chrome or Edge 113+</strong> on Windows, macOS and ChromeOS: WebGPU is on by default. Update the
            browser and reload.
          </li>
          <li>
            <strong>Chrome on Linux</strong>: open <code>chrome://flags/#enable-unsafe-webgpu</code>, set it to{' '}
            <em>Enabled</em> (and <code>chrome://flags/#enable-vulkan</code> too), then relaunch. Or start Chrome with{' '}
            <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>.
          </li>
          <li>
            <strong>Chrome on Android 121+</strong> (Android 12 or later, Qualcomm or ARM GPUs): on by default.
          </li>
          <li>
            <strong>Safari 26+</strong> (macOS Tahoe, iOS 26) and <strong>Firefox 141+</strong> on Windows ship WebGPU;
            older versions need it enabled in their developer settings.
          </li>
          <li>
            <strong>Firefox on Linux and macOS</strong>: open <code>about:config</code>, set{' '}
            <code>dom.webgpu.enabled</code> to <em>true</em> (and <code>gfx.webgpu.ignore-blocklist</code> to{' '}
            <em>true</em> if your GPU is blocklisted), then restart Firefox.
          </li>
          <li>
            Still nothing? Open <code>chrome://gpu</code> and look for <em>WebGPU: Hardware accelerated</em>. A
            blocklisted GPU or driver, or hardware acceleration switched off in the browser settings, disables WebGPU.
          </li>
        </ul>
        <button className="btn btn-primary" onClick={() => location.reload()}>
          Check again
        </button>
      </div>
    </div>
  );
}
