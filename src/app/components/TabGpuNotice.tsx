/**
 * Says so while another tab of the studio uses the GPU (this tab waits in the GPU lock's queue and shows that
 * tab's runs as they change), and tells when this tab takes over because that tab was closed.
 */
import { useEffect, useRef } from 'react';
import { useGpuRole } from '../client';
import { useStudio } from '../store';

export function TabGpuNotice() {
  const role = useGpuRole((s) => s.role);
  const waited = useRef(false);
  useEffect(() => {
    if (role === 'waiting') waited.current = true;
    else if (role === 'owner' && waited.current) {
      waited.current = false;
      useStudio.getState().toast('info', 'The other tab of the studio was closed: this tab now uses the GPU.');
    }
  }, [role]);
  if (role !== 'waiting') return null;
  return (
    <div className="tab-notice" role="status" data-testid="gpu-tab-notice">
      <strong>Another tab of LoRA Studio is using the GPU.</strong> This tab shows its runs as they change and keeps
      what you do here; it takes the GPU over as soon as that tab is closed (loading a model, training and generating
      wait until then).
    </div>
  );
}
