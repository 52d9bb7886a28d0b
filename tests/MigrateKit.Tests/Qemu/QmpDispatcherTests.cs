using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Qemu;

namespace MigrateKit.Tests.Qemu;

[TestClass]
public sealed class QmpDispatcherTests
{
    private readonly QmpDispatcher _dispatcher = new("/run/qmp.sock", eventCapacity: 2);

    private void Receive(string line) => _dispatcher.Dispatch(Encoding.UTF8.GetBytes(line));

    [TestMethod]
    public async Task Dispatch_AReturn_CompletesTheCallWithThatId()
    {
        TaskCompletionSource<JsonElement> first = _dispatcher.Expect(1, "query-status");
        TaskCompletionSource<JsonElement> second = _dispatcher.Expect(2, "stop");

        Receive("""{"return": 2, "id": 2}""");

        Assert.AreEqual(2, (await second.Task).GetInt32());
        Assert.IsFalse(first.Task.IsCompleted);
    }

    [TestMethod]
    public async Task Dispatch_AnError_FailsTheCallWithItsClassDescriptionAndCommand()
    {
        TaskCompletionSource<JsonElement> call = _dispatcher.Expect(3, "x");

        Receive("""{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}, "id": 3}""");

        QmpException e = await Assert.ThrowsExactlyAsync<QmpException>(() => call.Task);
        Assert.AreEqual("CommandNotFound", e.ErrorClass);
        Assert.AreEqual("The command x has not been found", e.Description);
        Assert.AreEqual("x", e.Command);
    }

    [TestMethod]
    public void Dispatch_AReplyToAForgottenCall_IsDropped()
    {
        _dispatcher.Expect(4, "cont");
        _dispatcher.Forget(4);

        Receive("""{"return": {}, "id": 4}""");
    }

    [TestMethod]
    public void Dispatch_AReplyWithoutAnId_IsAProtocolError()
    {
        Assert.ThrowsExactly<QmpException>(() => Receive("""{"return": {}}"""));
        Assert.ThrowsExactly<QmpException>(() => Receive("""{"something": 1}"""));
    }

    [TestMethod]
    public void Dispatch_Events_AreQueuedInOrder_DroppingTheOldestBeyondTheCapacity()
    {
        Receive("""{"event": "STOP"}""");
        Receive("""{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 0}}""");
        Receive("""{"event": "MIGRATION", "data": {"status": "active"}}""");

        Assert.IsTrue(_dispatcher.Events.TryRead(out QmpEvent? first));
        Assert.AreEqual("RESUME", first.Name);
        Assert.IsTrue(_dispatcher.Events.TryRead(out QmpEvent? second));
        Assert.AreEqual("active", second.Data!.Value.GetProperty("status").GetString());
    }

    [TestMethod]
    public async Task Fault_FailsTheWaitingCalls_AndEveryLaterOne()
    {
        TaskCompletionSource<JsonElement> waiting = _dispatcher.Expect(5, "stop");

        _dispatcher.Fault(new IOException("QEMU closed the QMP socket"));

        await Assert.ThrowsExactlyAsync<IOException>(() => waiting.Task);
        Assert.ThrowsExactly<IOException>(() => _dispatcher.Expect(6, "cont"));
    }

    [TestMethod]
    public void CompleteEvents_EndsTheEventSequence()
    {
        _dispatcher.CompleteEvents();

        Assert.IsTrue(_dispatcher.Events.Completion.IsCompleted);
    }
}
