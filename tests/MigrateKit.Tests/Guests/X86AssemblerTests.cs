using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;

namespace MigrateKit.Tests.Guests;

/// <summary>X86Assembler: each instruction's bytes against the 32-bit encodings of the Intel SDM.</summary>
[TestClass]
public sealed class X86AssemblerTests
{
    [TestMethod]
    public void MovImm_IsB8PlusRegister_WithLittleEndianImmediate()
    {
        AssertCode("B8 78 56 34 12", a => a.MovImm(Reg32.Eax, 0x1234_5678));
        AssertCode("B9 01 00 00 00", a => a.MovImm(Reg32.Ecx, 1));
        AssertCode("BA FF FF FF FF", a => a.MovImm(Reg32.Edx, uint.MaxValue));
        AssertCode("BB 00 00 00 00", a => a.MovImm(Reg32.Ebx, 0));
        AssertCode("BC 00 10 00 00", a => a.MovImm(Reg32.Esp, 0x1000));
        AssertCode("BD 00 00 00 80", a => a.MovImm(Reg32.Ebp, 0x8000_0000));
        AssertCode("BE 00 00 10 00", a => a.MovImm(Reg32.Esi, 0x10_0000));
        AssertCode("BF B1 79 37 9E", a => a.MovImm(Reg32.Edi, 0x9E37_79B1));
    }

    [TestMethod]
    public void RegisterToRegister_Mov_Xor_Add()
    {
        AssertCode("89 D8", a => a.Mov(Reg32.Eax, Reg32.Ebx));   // mov eax, ebx
        AssertCode("89 E9", a => a.Mov(Reg32.Ecx, Reg32.Ebp));   // mov ecx, ebp
        AssertCode("89 F0", a => a.Mov(Reg32.Eax, Reg32.Esi));   // mov eax, esi
        AssertCode("31 DB", a => a.Xor(Reg32.Ebx, Reg32.Ebx));   // xor ebx, ebx
        AssertCode("31 C6", a => a.Xor(Reg32.Esi, Reg32.Eax));   // xor esi, eax
        AssertCode("31 ED", a => a.Xor(Reg32.Ebp, Reg32.Ebp));   // xor ebp, ebp
        AssertCode("01 C8", a => a.Add(Reg32.Eax, Reg32.Ecx));   // add eax, ecx
        AssertCode("01 F7", a => a.Add(Reg32.Edi, Reg32.Esi));   // add edi, esi
    }

    [TestMethod]
    public void MemoryOperands_UseModRmMod10_WithDisp32()
    {
        AssertCode("88 9F 00 00 00 00", a => a.MovStoreByte(Reg32.Edi, 0, Reg32.Ebx));    // mov [edi+0], bl
        AssertCode("88 9A 00 00 00 00", a => a.MovStoreByte(Reg32.Edx, 0, Reg32.Ebx));    // mov [edx+0], bl
        AssertCode("88 85 10 00 00 00", a => a.MovStoreByte(Reg32.Ebp, 16, Reg32.Eax)); // mov [ebp+16], al
        AssertCode("89 9F 00 08 00 00", a => a.MovStore(Reg32.Edi, 2048, Reg32.Ebx));     // mov [edi+2048], ebx
        AssertCode("89 9F FC 0F 00 00", a => a.MovStore(Reg32.Edi, 4092, Reg32.Ebx));     // mov [edi+4092], ebx
        AssertCode("8B 86 FC FF FF FF", a => a.MovLoad(Reg32.Eax, Reg32.Esi, -4));        // mov eax, [esi-4]
        AssertCode("8B 8D 00 00 00 00", a => a.MovLoad(Reg32.Ecx, Reg32.Ebp, 0));         // mov ecx, [ebp+0]
        AssertCode("39 87 00 08 00 00", a => a.CmpMem(Reg32.Edi, 2048, Reg32.Eax));      // cmp [edi+2048], eax
        AssertCode("8D 8D 01 00 00 00", a => a.Lea(Reg32.Ecx, Reg32.Ebp, 1));             // lea ecx, [ebp+1]
        AssertCode("8D 80 00 00 00 80", a => a.Lea(Reg32.Eax, Reg32.Eax, int.MinValue));  // lea eax, [eax-0x80000000]
    }

    [TestMethod]
    public void EspAsBase_IsRejected_BecauseItNeedsASib()
    {
        var a = new X86Assembler();
        Assert.ThrowsExactly<ArgumentException>(() => a.MovStore(Reg32.Esp, 0, Reg32.Eax));
        Assert.ThrowsExactly<ArgumentException>(() => a.MovLoad(Reg32.Eax, Reg32.Esp, 4));
        Assert.ThrowsExactly<ArgumentException>(() => a.MovStoreByte(Reg32.Esp, 0, Reg32.Eax));
        Assert.ThrowsExactly<ArgumentException>(() => a.CmpMem(Reg32.Esp, 0, Reg32.Eax));
        Assert.ThrowsExactly<ArgumentException>(() => a.Lea(Reg32.Eax, Reg32.Esp, 0));
        Assert.AreEqual(0, a.Position, "a rejected instruction emits nothing");
    }

    [TestMethod]
    public void ByteStore_OfARegisterWithoutALowByte_IsRejected()
    {
        // In 32-bit code, reg fields 4..7 of a byte operation mean ah, ch, dh, bh.
        var a = new X86Assembler();
        foreach (Reg32 r in new[] { Reg32.Esp, Reg32.Ebp, Reg32.Esi, Reg32.Edi })
        {
            ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => a.MovStoreByte(Reg32.Edi, 0, r));
            Assert.AreEqual("src", ex.ParamName);
        }

        Assert.AreEqual(0, a.Position);
    }

    [TestMethod]
    public void Group1Immediates_Are81_WithTheOpcodeExtension()
    {
        AssertCode("81 C7 00 10 00 00", a => a.AddImm(Reg32.Edi, 0x1000));        // add edi, 0x1000
        AssertCode("81 C2 00 00 10 00", a => a.AddImm(Reg32.Edx, 0x10_0000));     // add edx, 0x100000
        AssertCode("81 CB 01 00 00 00", a => a.OrImm(Reg32.Ebx, 1));              // or ebx, 1
        AssertCode("81 C8 00 00 00 80", a => a.OrImm(Reg32.Eax, 0x8000_0000));    // or eax, 0x80000000
        AssertCode("81 E0 FF 00 00 00", a => a.AndImm(Reg32.Eax, 0xFF));          // and eax, 0xff
        AssertCode("81 FF 00 00 20 00", a => a.CmpImm(Reg32.Edi, 0x20_0000));     // cmp edi, 0x200000
        AssertCode("81 F9 00 F0 FF FF", a => a.CmpImm(Reg32.Ecx, 0xFFFF_F000));   // cmp ecx, 0xfffff000
    }

    [TestMethod]
    public void IncDec_AreTheOneByteForms()
    {
        AssertCode("40", a => a.Inc(Reg32.Eax));
        AssertCode("43", a => a.Inc(Reg32.Ebx));
        AssertCode("46", a => a.Inc(Reg32.Esi));
        AssertCode("47", a => a.Inc(Reg32.Edi));
        AssertCode("48", a => a.Dec(Reg32.Eax));
        AssertCode("49", a => a.Dec(Reg32.Ecx));
        AssertCode("4F", a => a.Dec(Reg32.Edi));
    }

    [TestMethod]
    public void ShiftsAndMultiplies()
    {
        AssertCode("C1 E0 0D", a => a.ShlImm(Reg32.Eax, 13));                            // shl eax, 13
        AssertCode("C1 E2 0C", a => a.ShlImm(Reg32.Edx, 12));                            // shl edx, 12
        AssertCode("C1 E8 11", a => a.ShrImm(Reg32.Eax, 17));                            // shr eax, 17
        AssertCode("C1 EF 1F", a => a.ShrImm(Reg32.Edi, 31));                            // shr edi, 31
        AssertCode("69 DE B1 79 37 9E", a => a.ImulImm(Reg32.Ebx, Reg32.Esi, 0x9E37_79B1)); // imul ebx, esi, 0x9e3779b1
        AssertCode("69 C6 03 00 00 00", a => a.ImulImm(Reg32.Eax, Reg32.Esi, 3));       // imul eax, esi, 3
        AssertCode("0F AF C5", a => a.Imul(Reg32.Eax, Reg32.Ebp));                       // imul eax, ebp
        AssertCode("0F AF D9", a => a.Imul(Reg32.Ebx, Reg32.Ecx));                       // imul ebx, ecx
        AssertCode("F7 E5", a => a.Mul(Reg32.Ebp));                                      // mul ebp
        AssertCode("F7 E1", a => a.Mul(Reg32.Ecx));                                      // mul ecx
    }

    [TestMethod]
    public void PortIo_StringOps_AndHalt()
    {
        AssertCode("66 BA E4 00", a => a.MovDx(0xE4));      // mov dx, 0xe4
        AssertCode("66 BA 34 12", a => a.MovDx(0x1234));    // mov dx, 0x1234
        AssertCode("66 BA FF FF", a => a.MovDx(0xFFFF));    // mov dx, 0xffff
        AssertCode("EE", a => a.OutDxAl());                 // out dx, al
        AssertCode("EF", a => a.OutDxEax());                // out dx, eax
        AssertCode("F3 AB", a => a.RepStosd());             // rep stosd
        AssertCode("FC", a => a.Cld());                     // cld
        AssertCode("F4", a => a.Hlt());                     // hlt
    }

    [TestMethod]
    public void Rotate_Stack_CallAndReturn_PortInput_AndTest()
    {
        AssertCode("C1 C3 04", a => a.RolImm(Reg32.Ebx, 4));      // rol ebx, 4
        AssertCode("C1 C0 1F", a => a.RolImm(Reg32.Eax, 31));     // rol eax, 31
        AssertCode("50", a => a.Push(Reg32.Eax));                 // push eax
        AssertCode("53", a => a.Push(Reg32.Ebx));                 // push ebx
        AssertCode("57", a => a.Push(Reg32.Edi));                 // push edi
        AssertCode("58", a => a.Pop(Reg32.Eax));                  // pop eax
        AssertCode("5A", a => a.Pop(Reg32.Edx));                  // pop edx
        AssertCode("5F", a => a.Pop(Reg32.Edi));                  // pop edi
        AssertCode("C3", a => a.Ret());                           // ret
        AssertCode("EC", a => a.InAlDx());                        // in al, dx
        AssertCode("A8 20", a => a.TestAlImm(0x20));              // test al, 0x20
        AssertCode("A8 FF", a => a.TestAlImm(0xFF));              // test al, 0xff
    }

    [TestMethod]
    public void Call_IsRel32FromTheEndOfTheInstruction_LikeJmp()
    {
        // call sub; hlt; sub: ret  ->  rel = 1
        AssertCode("E8 01 00 00 00 F4 C3", a =>
        {
            Label sub = a.NewLabel();
            a.Call(sub);
            a.Hlt();
            a.Bind(sub);
            a.Ret();
        });

        // sub: ret; call sub  ->  rel = 0 - 6
        AssertCode("C3 E8 FA FF FF FF", a =>
        {
            Label sub = a.NewLabel();
            a.Bind(sub);
            a.Ret();
            a.Call(sub);
        });
    }

    [TestMethod]
    public void JeAndJbe_AreTheTwoByteNearForms()
    {
        // top: je top; jbe top  ->  0F 84 rel -6, 0F 86 rel -12
        AssertCode("0F 84 FA FF FF FF 0F 86 F4 FF FF FF", a =>
        {
            Label top = a.NewLabel();
            a.Bind(top);
            a.Je(top);
            a.Jbe(top);
        });
    }

    [TestMethod]
    public void EveryInstruction_DisassemblesWithObjdump_AsDocumented()
    {
        // One of each instruction the assembler emits, at 0x1000, against GNU objdump's decoder.
        var a = new X86Assembler();
        Label top = a.NewLabel(), sub = a.NewLabel();
        a.Bind(top);
        a.MovImm(Reg32.Esi, 0x10_0000);
        a.Mov(Reg32.Eax, Reg32.Ebx);
        a.MovStoreByte(Reg32.Edi, 0, Reg32.Ebx);
        a.MovStore(Reg32.Edi, 4092, Reg32.Ebx);
        a.MovLoad(Reg32.Eax, Reg32.Esi, -4);
        a.CmpMem(Reg32.Edi, 2048, Reg32.Eax);
        a.Lea(Reg32.Ecx, Reg32.Ebp, 1);
        a.AddImm(Reg32.Edi, 0x1000);
        a.OrImm(Reg32.Eax, 0x8000_0000);
        a.AndImm(Reg32.Eax, 0xF);
        a.CmpImm(Reg32.Ecx, 1);
        a.Xor(Reg32.Esi, Reg32.Eax);
        a.Add(Reg32.Edi, Reg32.Esi);
        a.Inc(Reg32.Ebx);
        a.Dec(Reg32.Ecx);
        a.ShlImm(Reg32.Eax, 13);
        a.ShrImm(Reg32.Eax, 17);
        a.RolImm(Reg32.Ebx, 4);
        a.ImulImm(Reg32.Ebx, Reg32.Esi, 0x9E37_79B1);
        a.Imul(Reg32.Eax, Reg32.Ebp);
        a.Mul(Reg32.Ebp);
        a.MovDx(0x3FD);
        a.OutDxAl();
        a.OutDxEax();
        a.InAlDx();
        a.TestAlImm(0x20);
        a.Push(Reg32.Ebx);
        a.Pop(Reg32.Ebx);
        a.RepStosd();
        a.Cld();
        a.Hlt();
        a.Call(sub);
        a.Jmp(top);
        a.Jb(top);
        a.Je(top);
        a.Jne(top);
        a.Jbe(top);
        a.Bind(sub);
        a.Ret();

        string[] expected =
        [
            "mov esi,0x100000",
            "mov eax,ebx",
            "mov BYTE PTR [edi+0x0],bl",
            "mov DWORD PTR [edi+0xffc],ebx",
            "mov eax,DWORD PTR [esi-0x4]",
            "cmp DWORD PTR [edi+0x800],eax",
            "lea ecx,[ebp+0x1]",
            "add edi,0x1000",
            "or eax,0x80000000",
            "and eax,0xf",
            "cmp ecx,0x1",
            "xor esi,eax",
            "add edi,esi",
            "inc ebx",
            "dec ecx",
            "shl eax,0xd",
            "shr eax,0x11",
            "rol ebx,0x4",
            "imul ebx,esi,0x9e3779b1",
            "imul eax,ebp",
            "mul ebp",
            "mov dx,0x3fd",
            "out dx,al",
            "out dx,eax",
            "in al,dx",
            "test al,0x20",
            "push ebx",
            "pop ebx",
            "rep stos DWORD PTR es:[edi],eax",
            "cld",
            "hlt",
            "call 0x1088",              // the ret at the end
            "jmp 0x1000",
            "jb 0x1000",
            "je 0x1000",
            "jne 0x1000",
            "jbe 0x1000",
            "ret",
        ];

        string[] actual = Objdump.Disassemble(a.ToArray(), "i386", vma: 0x1000);
        Assert.AreEqual(string.Join('\n', expected), string.Join('\n', actual));
    }

    [TestMethod]
    public void BackwardJmp_IsRel32FromTheEndOfTheInstruction()
    {
        // top: hlt; jmp top  ->  rel = 0 - 6
        AssertCode("F4 E9 FA FF FF FF", a =>
        {
            Label top = a.NewLabel();
            a.Bind(top);
            a.Hlt();
            a.Jmp(top);
        });
    }

    [TestMethod]
    public void ForwardJumps_ArePatchedWhenTheLabelIsBound()
    {
        // jmp skip; hlt; skip: hlt  ->  rel = 1
        AssertCode("E9 01 00 00 00 F4 F4", a =>
        {
            Label skip = a.NewLabel();
            a.Jmp(skip);
            a.Hlt();
            a.Bind(skip);
            a.Hlt();
        });

        // jne next; next:  ->  rel = 0
        AssertCode("0F 85 00 00 00 00", a =>
        {
            Label next = a.NewLabel();
            a.Jne(next);
            a.Bind(next);
        });
    }

    [TestMethod]
    public void ConditionalJumps_AreTheTwoByteNearForms_EvenForShortDistances()
    {
        // top: inc eax; jb top  ->  0F 82, rel = 0 - 7
        AssertCode("40 0F 82 F9 FF FF FF", a =>
        {
            Label top = a.NewLabel();
            a.Bind(top);
            a.Inc(Reg32.Eax);
            a.Jb(top);
        });

        // top: dec ecx; jne top; hlt
        AssertCode("49 0F 85 F9 FF FF FF F4", a =>
        {
            Label top = a.NewLabel();
            a.Bind(top);
            a.Dec(Reg32.Ecx);
            a.Jne(top);
            a.Hlt();
        });
    }

    [TestMethod]
    public void SeveralJumpsToOneLabel_AllResolve()
    {
        // jmp end; jb end; jne end; end: hlt; jmp end
        AssertCode("E9 0C 00 00 00 0F 82 06 00 00 00 0F 85 00 00 00 00 F4 E9 FA FF FF FF", a =>
        {
            Label end = a.NewLabel();
            a.Jmp(end);
            a.Jb(end);
            a.Jne(end);
            a.Bind(end);
            a.Hlt();
            a.Jmp(end);
        });
    }

    [TestMethod]
    public void LongForwardJump_HasTheFullDisplacement()
    {
        var a = new X86Assembler();
        Label far = a.NewLabel();
        a.Jmp(far);
        for (int i = 0; i < 70_000; i++)
        {
            a.Cld();
        }

        a.Bind(far);
        a.Hlt();
        byte[] code = a.ToArray();
        Assert.AreEqual(0xE9, code[0]);
        Assert.AreEqual(70_000, BitConverter.ToInt32(code, 1));
        Assert.AreEqual(0xF4, code[^1]);
    }

    [TestMethod]
    public void JumpToAnUnboundLabel_FailsAtToArray()
    {
        var a = new X86Assembler();
        a.Jmp(a.NewLabel());
        Assert.ThrowsExactly<InvalidOperationException>(() => a.ToArray());
    }

    [TestMethod]
    public void Position_CountsEmittedBytes_AndBindRecordsIt()
    {
        var a = new X86Assembler();
        Assert.AreEqual(0, a.Position);
        a.MovImm(Reg32.Eax, 1);
        Assert.AreEqual(5, a.Position);
        a.MovDx(0xE0);
        Assert.AreEqual(9, a.Position);
        Label here = a.NewLabel();
        Assert.AreEqual(-1, here.Position);
        a.Bind(here);
        Assert.AreEqual(9, here.Position);
        a.Jne(here);
        Assert.AreEqual(15, a.Position);
        Assert.HasCount(15, a.ToArray());
    }

    [TestMethod]
    public void ToArray_CanBeCalledAgain_WithTheSameResult()
    {
        var a = new X86Assembler();
        Label top = a.NewLabel();
        a.Bind(top);
        a.Jmp(top);
        byte[] first = a.ToArray();
        byte[] second = a.ToArray();
        Assert.AreNotSame(first, second);
        Assert.AreSequenceEqual(first, second);
        Assert.AreSequenceEqual(Hex("E9 FB FF FF FF"), first);
    }

    private static void AssertCode(string expectedHex, Action<X86Assembler> emit)
    {
        var a = new X86Assembler();
        emit(a);
        byte[] code = a.ToArray();
        Assert.AreEqual(expectedHex, BitConverter.ToString(code).Replace('-', ' '), "bytes emitted");
    }

    private static byte[] Hex(string spaced) => Convert.FromHexString(spaced.Replace(" ", string.Empty, StringComparison.Ordinal));
}

