using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Kvm;

namespace MigrateKit.Tests.Kvm;

[TestClass]
public sealed class KvmExceptionTests
{
    [TestMethod]
    public void Check_OnSuccess_NeitherFormatsTheDescriptionNorAllocates()
    {
        int formatted = 0;
        uint slot = 3;
        KvmException.Check(0, $"KVM_GET_DIRTY_LOG (slot {slot}, {Count(ref formatted)})");
        Assert.AreEqual(0, formatted, "the description was formatted for a call that succeeded");

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            KvmException.Check(i, $"KVM_GET_DIRTY_LOG (slot {slot})");
        }

        Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before, "successful checks allocated");
    }

    [TestMethod]
    public void Check_OnFailure_NamesTheOperationWithItsValues()
    {
        uint slot = 3;
        KvmException ex = Assert.ThrowsExactly<KvmException>(() => KvmException.Check(-Errno.EFAULT, $"KVM_GET_DIRTY_LOG (slot {slot})"));
        Assert.AreEqual("KVM_GET_DIRTY_LOG (slot 3)", ex.Operation);
        Assert.AreEqual(Errno.EFAULT, ex.Errno);
        StringAssert.Contains(ex.Message, "(EFAULT)");
    }

    [TestMethod]
    public void ErrnoCheck_FormatsItsDescriptionOnlyOnFailureToo()
    {
        int formatted = 0;
        Errno.Check(0, $"mmap {Count(ref formatted)}");
        Assert.AreEqual(0, formatted);
        LinuxException ex = Assert.ThrowsExactly<LinuxException>(() => Errno.Check(-Errno.ENOMEM, $"mmap of {4096} bytes"));
        Assert.AreEqual("mmap of 4096 bytes", ex.Operation);
    }

    private static int Count(ref int calls) => ++calls;
}
