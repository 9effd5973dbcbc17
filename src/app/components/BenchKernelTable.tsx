/** Where one LoRA training step's GPU time goes, kernel by kernel (timestamp queries). */
import { num } from '../../bench/format';
import type { KernelTime } from '../../bench/profile';
import type { BenchResult } from '../../worker/protocol';

export function BenchKernelTable({
  kernels,
  profile,
}: {
  kernels: KernelTime[];
  profile: NonNullable<BenchResult['profile']>;
}) {
  return (
    <div className="table-wrap">
      <table className="table" data-testid="bench-kernels">
        <thead>
          <tr>
            <th>
              Kernel (one LoRA r{profile.rank} {profile.label} step, {profile.batch} x {profile.seq})
            </th>
            <th className="num">dispatches</th>
            <th className="num">GPU ms</th>
            <th className="num">share</th>
          </tr>
        </thead>
        <tbody>
          {kernels.map((k) => (
            <tr key={k.kernel} data-testid="bench-kernel-row">
              <td>
                <code>{k.kernel}</code>
              </td>
              <td className="num">{k.dispatches}</td>
              <td className="num">{num(k.ms)}</td>
              <td className="num">{(k.share * 100).toFixed(1)}%</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
