using System;
using System.Linq;
using MigrateKit.Guests;
using MigrateKit.Kvm;
using MigrateKit.Memory;

namespace MigrateKit.Vmm;

public sealed partial class MicroVm
{
    /// <summary>The least guest memory a boot image needs: the first MiB (vector table, stack, image, the BIOS's areas) and one page above it.</summary>
    public const ulong MinimumBootMemory = BootSector.MinimumWriteAddress + GuestMemoryLayout.PageSize;

    private const string BootImageName = "boot image";

    /// <summary>
    /// Boots a raw disk image built by <see cref="BootSector.Build"/> on vCPU <paramref name="vcpu"/>,
    /// as QEMU's <c>pc</c> machine with SeaBIOS would run it: the image (the stub at 0x7C00, the
    /// program sectors after it at 0x7E00, where the stub's disk read would put them), an
    /// <c>int 13h</c> that reports success, DL = 0x80 and the vCPU in real mode at 0:7C00. The
    /// stub then switches to protected mode and enters the program. Build the VM with
    /// <see cref="GuestPorts.Com1"/> ports for programs that report on COM1, so their passes reach
    /// <see cref="GetStatus"/> and <see cref="WaitForPass"/>.
    /// </summary>
    /// <param name="image">The disk image: whole sectors, the boot signature at offset 510, at most
    /// <see cref="BootSector.MaxProgramSectors"/> program sectors.</param>
    /// <param name="vcpu">The vCPU that boots.</param>
    /// <exception cref="ArgumentException">The image is not a boot image, or guest memory does not
    /// hold the first <see cref="MinimumBootMemory"/> bytes in one region.</exception>
    /// <exception cref="InvalidOperationException">The VM has already started, or already boots an image.</exception>
    public void Boot(byte[] image, int vcpu = 0)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegative(vcpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vcpu, _runners.Length);
        RealMode.CheckImage(image);
        if (!_memory.TryTranslate(0, out GuestMemoryRegion low, out _) || low.End < MinimumBootMemory)
        {
            throw new ArgumentException($"A boot image needs guest memory from 0 to at least 0x{MinimumBootMemory:x} in one region (the first MiB is the firmware's and the image's, the program works above it); this VM has {_memory.TotalSize >> 20} MiB in other regions.", nameof(image));
        }

        lock (_gate)
        {
            if (_state != MicroVmState.Created)
            {
                throw new InvalidOperationException("Boot images are loaded before Start.");
            }

            // Every image goes to 0x7C00 and brings its own stack and vector table: one per VM.
            if (_runners.Any(r => r.Program?.Name == BootImageName))
            {
                throw new InvalidOperationException("This VM already boots an image; a VM boots one, on one vCPU.");
            }

            RealMode.WriteFirmware(_memory.GetSpan(0, RealMode.FirmwareLength));
            image.CopyTo(_memory.GetSpan(BootSector.BootAddress, image.Length));
            KvmVcpu v = _runners[vcpu].Vcpu;
            v.SetSpecialRegisters(RealMode.Enter(v.GetSpecialRegisters()));
            v.SetRegisters(RealMode.Registers());
            _runners[vcpu].Program = new GuestProgram(BootImageName, image, BootSector.BootAddress, Options.Ports, []);
        }
    }

    /// <summary>
    /// Builds <paramref name="program"/> into a boot image with <see cref="BootSector.Build"/> and
    /// boots it (see <see cref="Boot(byte[], int)"/>), after checking that its working set lies in guest memory.
    /// </summary>
    /// <exception cref="ArgumentException">The program was not built for <see cref="BootSector.ProgramAddress"/>,
    /// uses other ports than the VM, or its working set is not in guest memory.</exception>
    /// <exception cref="InvalidOperationException">The VM has already started.</exception>
    public void Boot(GuestProgram program, int vcpu = 0)
    {
        ArgumentNullException.ThrowIfNull(program);
        if (program.Ports != Options.Ports)
        {
            throw new ArgumentException($"The program uses ports {program.Ports}; this VM listens on {Options.Ports}.", nameof(program));
        }

        foreach (GuestRange w in program.Writes)
        {
            CheckBacked(w, "working set");
        }

        Boot(BootSector.Build(program), vcpu);
    }
}
